"""Small helpers used by every stage (atomic writes, progress, hashing)."""
