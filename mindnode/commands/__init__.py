"""Click commands of the `mindnode` CLI that live in their own modules (registered by the groups)."""
