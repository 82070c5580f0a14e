"""Sample world: a generated retailer's raw logs with their ground truth."""
