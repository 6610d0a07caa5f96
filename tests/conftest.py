"""pytest: the whole suite runs the stack in strict mode (an internal exception fails
the test instead of being counted and swallowed); tests/mpy_run.py does the same."""
import mptcp.stack

mptcp.stack.Stack.strict = True
