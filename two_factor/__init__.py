"""Two-factor authentication: an authenticator app (TOTP) and single-use recovery codes, through
django-otp. Optional for everyone; required, with a session verified by a code, for what moves real
money (a live account's opt-in, approving its runs)."""
