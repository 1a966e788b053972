"""The caller themself: who they are, whom they act for, their teams and preferences (/v1/me)."""
