"""Operations: the job context, ``ops.job_runs`` bookkeeping, progress and alerts."""

from crossdata.ops.runs import Context, JobRun, git_commit, job_run, raise_alert

__all__ = ["Context", "JobRun", "git_commit", "job_run", "raise_alert"]
