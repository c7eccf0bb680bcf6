"""HRNet zoo."""
