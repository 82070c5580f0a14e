"""Column tables filled person by person and concatenated once per chunk of people."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

# The rows a chunk of people produces, before serialisation. dtype "O" holds text.
SPECS: dict[str, dict[str, str]] = {
    "sessions": {
        "pid": "i8",
        "sid": "i8",
        "t": "i8",  # start instant, or the last event's instant when anchor_end
        "anchor_end": "?",
        "app": "?",
        "kiosk": "?",
        "cookie": "O",  # the real cookie the server sees ("" in the app)
        "ev_cookie": "O",  # what the site tag writes (may be a placeholder)
        "ev_device": "O",
        "ev_user": "O",  # "" when not logged in
        "login_event": "?",
        "ip": "O",
        "ua": "O",
        "zone": "i8",  # fixed offset in minutes, or PARIS
        "skew": "i8",
        "entry": "i8",  # channel index of the visit's source, -1 for none
        "query": "O",
        "referrer": "O",
        "n": "i8",
        "tag": "?",
        "order": "O",
        "amount": "f8",
        "late": "i8",
        "signup": "O",
        "appv": "O",
        "ph": "O",  # placeholder written for cookie_id/device_id, as field=value
        "ph_user": "O",
    },
    "impressions": {
        "pid": "i8",
        "key": "u8",
        "t": "i8",
        "impression_id": "O",
        "campaign_id": "O",
        "channel": "O",
        "creative_id": "O",
        "placement": "O",
        "cookie_id": "O",
        "device_id": "O",
        "cost": "f8",
        "ph": "O",
    },
    "clicks": {
        "pid": "i8",
        "key": "u8",
        "t": "i8",
        "click_id": "O",
        "impression_id": "O",
        "campaign_id": "O",
        "channel": "O",
        "creative_id": "O",
        "cookie_id": "O",
        "cost": "f8",
        "landing_url": "O",
    },
    "emails": {
        "pid": "i8",
        "key": "u8",
        "t": "i8",
        "event_id": "O",
        "event_type": "O",
        "email": "O",
        "campaign_id": "O",
        "message_id": "O",
        "link_url": "O",
        "landing_cookie_id": "O",
    },
    "orders": {
        "pid": "i8",
        "key": "u8",
        "t": "i8",
        "order_id": "O",
        "channel": "O",
        "user_id": "O",
        "cookie_id": "O",
        "device_id": "O",
        "email": "O",
        "phone": "O",
        "loyalty_card": "O",
        "store_id": "O",
        "amount": "f8",
        "lines": "O",
        "status": "O",
        "ph": "O",
    },
    "consents": {
        "pid": "i8",
        "key": "u8",
        "t": "i8",
        "consent_id": "O",
        "id_type": "O",
        "id_value": "O",
        "purpose": "O",
        "status": "O",
        "channel": "O",
    },
    "crm": {
        "pid": "i8",
        "key": "u8",
        "t": "i8",
        "day": "i8",  # delivery day (0 for the first snapshot)
        "customer_number": "O",
        "first_name": "O",
        "last_name": "O",
        "email": "O",
        "phone": "O",
        "mobile_phone": "O",
        "address_line1": "O",
        "postal_code": "O",
        "city": "O",
        "birth_date": "O",
        "store_id": "O",
        "loyalty_card": "O",
        "source_system": "O",
        "preferred_language": "O",
        "ph": "O",
    },
}


class Table:
    """Rows of one kind for a chunk of people, kept as lists of column pieces."""

    def __init__(self, spec: Mapping[str, str]):
        self.spec = dict(spec)
        self.parts: dict[str, list[np.ndarray]] = {name: [] for name in self.spec}

    def add(self, rows: int, /, **columns: Any) -> None:
        """Append ``rows`` rows; a scalar is repeated, every column must be given."""
        n = rows
        if n <= 0:
            return
        if columns.keys() != self.spec.keys():
            missing = set(self.spec) ^ set(columns)
            raise KeyError(f"columns do not match the table: {sorted(missing)}")
        for name, value in columns.items():
            dtype = self.spec[name]
            if np.ndim(value) == 0:
                arr = np.empty(n, dtype=dtype)
                arr[:] = value
            else:
                arr = np.asarray(value, dtype=dtype)
                if len(arr) != n:
                    raise ValueError(f"column {name} has {len(arr)} values, expected {n}")
            self.parts[name].append(arr)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every column, concatenated."""
        return {
            name: (
                np.concatenate(self.parts[name])
                if self.parts[name]
                else np.empty(0, dtype=self.spec[name])
            )
            for name in self.spec
        }


def new_tables() -> dict[str, Table]:
    """Empty tables for one chunk of people."""
    return {name: Table(spec) for name, spec in SPECS.items()}
