"""Modem power control lines (PWRKEY, RESET) behind one small interface.

The modem state machine only calls `set_pwrkey(v)` / `set_reset(v)` with its own deadlines
(no sleeping); `pulse_pwrkey(ms)` and `reset()` are blocking helpers for scripts.
`v` is the *asserted* state (True = key pressed); `invert` covers boards that drive the
modem's PWRKEY through a transistor (MCU high = key pressed) or directly (low = pressed).
"""
import time


def _sleep_ms(ms):
    f = getattr(time, "sleep_ms", None)
    if f is not None:
        f(ms)
    else:
        time.sleep(ms / 1000)


class ModemPins:
    """Interface and the blocking helpers; subclasses implement _write(which, level)."""

    def __init__(self, pwrkey=None, reset=None, invert=False):
        self.pwrkey = pwrkey
        self.reset_pin = reset
        self.invert = invert

    def _write(self, which, level):
        pass

    def set_pwrkey(self, asserted):
        if self.pwrkey is not None:
            self._write(0, (not asserted) if self.invert else bool(asserted))

    def set_reset(self, asserted):
        if self.reset_pin is not None:
            self._write(1, (not asserted) if self.invert else bool(asserted))

    def pulse_pwrkey(self, ms=1000):
        self.set_pwrkey(True)
        _sleep_ms(ms)
        self.set_pwrkey(False)

    def reset(self, ms=300):
        self.set_reset(True)
        _sleep_ms(ms)
        self.set_reset(False)

    def close(self):
        pass


class NullPins(ModemPins):
    """No control lines (the lab's emulated modem, or a modem that powers itself)."""

    def __init__(self):
        ModemPins.__init__(self, None, None)
        self.log = []     # what would have been driven, for tests

    def set_pwrkey(self, asserted):
        self.log.append(("pwrkey", bool(asserted)))

    def set_reset(self, asserted):
        self.log.append(("reset", bool(asserted)))


class MachinePins(ModemPins):
    """machine.Pin on MicroPython boards; pin ids as the board config names them."""

    def __init__(self, pwrkey=None, reset=None, invert=False):
        ModemPins.__init__(self, pwrkey, reset, invert)
        import machine   # lazily: absent on the unix port and CPython
        idle = 1 if invert else 0
        self._p = [None, None]  # type: list
        if pwrkey is not None:
            self._p[0] = machine.Pin(pwrkey, machine.Pin.OUT, value=idle)
        if reset is not None:
            self._p[1] = machine.Pin(reset, machine.Pin.OUT, value=idle)

    def _write(self, which, level):
        p = self._p[which]
        if p is not None:
            p.value(1 if level else 0)


class RpiGpioPins(ModemPins):
    """RPi.GPIO (BCM numbering) on a Raspberry Pi; rpi-lgpio provides the module on a Pi 5."""

    def __init__(self, pwrkey=None, reset=None, invert=False):
        ModemPins.__init__(self, pwrkey, reset, invert)
        # lazily, only on a Pi's Linux (the Pico's pins are machine.Pin)
        import RPi.GPIO as GPIO  # pyright: ignore[reportMissingImports]
        self._gpio = GPIO
        GPIO.setwarnings(False)
        GPIO.setmode(GPIO.BCM)
        idle = GPIO.HIGH if invert else GPIO.LOW
        self._p = [pwrkey, reset]
        for p in self._p:
            if p is not None:
                GPIO.setup(p, GPIO.OUT, initial=idle)

    def _write(self, which, level):
        p = self._p[which]
        if p is not None:
            self._gpio.output(p, self._gpio.HIGH if level else self._gpio.LOW)

    def close(self):
        for p in self._p:
            if p is not None:
                try:
                    self._gpio.cleanup(p)
                except Exception:
                    pass


def make_pins(kind, pwrkey=None, reset=None, invert=False):
    """'machine' | 'rpi' | 'null' (board config) -> a ModemPins."""
    if kind == "machine":
        return MachinePins(pwrkey, reset, invert)
    if kind == "rpi":
        return RpiGpioPins(pwrkey, reset, invert)
    return NullPins()
