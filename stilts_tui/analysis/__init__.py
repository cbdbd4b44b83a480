"""Statistics, tables and plots computed from the store's records."""
