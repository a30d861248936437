"""The operator inbox's own data (SLA policies, working hours, canned replies)."""
