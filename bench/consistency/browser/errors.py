"""What goes wrong in the browser harness."""


class HarnessError(RuntimeError):
    """Something the measurement needs did not start or answer; the message says what and shows its output."""
