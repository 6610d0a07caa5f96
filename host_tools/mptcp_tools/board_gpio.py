"""mptcp-board: drive an attached board's RUN / BOOTSEL and the modem's PWRKEY from a Pi.

    mptcp-board reset                 Pico RUN low for --reset-ms (100), then released
    mptcp-board bootsel               BOOTSEL held low while RUN is pulsed: the RP2040 comes
                                      up as the USB mass-storage bootloader (RPI-RP2)
    mptcp-board modem-power [pulse]   PWRKEY pressed for --pulse-ms (1000; 500-2000 typical)
    mptcp-board modem-power on|off    PWRKEY pressed for --on-ms (1000) / --off-ms (3000)
    --dry-run                         print the transitions instead of driving the pins

Pins are BCM GPIO numbers (not header pin numbers). Defaults: RUN = GPIO 22 (header pin 15),
BOOTSEL = GPIO 23 (header pin 16), both host-side defaults of this tool; PWRKEY = the
`PIN_PWRKEY` of the board config (`boards/rpi/mptcp_board.py`: GPIO 17, header pin 11), with
`PWRKEY_INVERT` if the config sets it. Flags override every one.

Wiring: RUN and BOOTSEL are open drain here: "high" releases the line (the GPIO becomes an
input and the Pico's own pull-up holds it high), "low" drives it to ground. BOOTSEL is the
flash chip's select line (QSPI_SS; the TP6 test pad on a Pico W), so it must never be driven
high. PWRKEY is push-pull, as firmware/mptcp_net/pins.py drives it: the key is pressed at GPIO high
(a transistor pulling the modem's PWRKEY low, the usual HAT wiring); `--pwrkey-invert` for a
line wired straight to the key (pressed = GPIO low). `invert` on any pin flips the level on
the wire (e.g. RUN through an NPN transistor: `--run-invert`).

PWRKEY cannot tell whether the modem is on: `on` and `off` are presses of the length the
modem's manual gives for each (SIM7600: on >= 0.5 s, off >= 2.5 s; EC25/BG96: on >= 0.5 s,
off >= 0.65 s), and a press toggles a modem that is already in the other state.

RPi.GPIO is imported only when a pin is really driven (`pip install '.[rpi]'`; on a
Raspberry Pi 5 the rpi-lgpio package provides the same module: `pip install '.[rpi5]'`).
"""
import argparse
import os
import runpy
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_CONFIG = os.path.join(ROOT, "boards", "rpi", "mptcp_board.py")

PIN_RUN = 22          # BCM; host-side default (header pin 15)
PIN_BOOTSEL = 23      # BCM; host-side default (header pin 16)
PIN_PWRKEY = 17       # BCM; used when no board config names one (header pin 11)

RESET_MS = 100        # RUN held low
BOOTSEL_SETUP_MS = 20  # BOOTSEL low before RUN goes low
BOOTSEL_HOLD_MS = 500  # BOOTSEL kept low after RUN is released (the boot ROM samples it)
PULSE_MS = 1000
ON_MS = 1000
OFF_MS = 3000
MAX_PRESS_MS = 10000

GPIO_MISSING = ("RPi.GPIO is not installed: pip install 'mptcp-embedded-host[rpi]' "
                "(package RPi.GPIO); on a Raspberry Pi 5 install rpi-lgpio instead "
                "(pip install rpi-lgpio), which provides the same RPi.GPIO module")


class GpioError(Exception):
    """A pin cannot be driven here (module missing, not a Pi, no permission)."""


# ------------------------------------------------------------------ pins
class Pin:
    """One output line. set(level) asks for a logical level (1 high, 0 low); `invert` flips
    it on the wire; an open-drain pin is released (input, pulled up by the board) for high."""

    def __init__(self, name, number, invert=False, open_drain=False):
        self.name = name
        self.number = number
        self.invert = invert
        self.open_drain = open_drain

    def set(self, level):
        self._drive(1 if bool(level) != bool(self.invert) else 0)

    def _drive(self, wire_level):
        raise NotImplementedError

    def close(self):
        pass


class FakeClock:
    """Time that advances only when sleep() is called, and the log of every transition:
    (time_ms, pin name, wire level). For tests: exact order, no wall clock."""

    def __init__(self):
        self.now = 0
        self.log = []

    def sleep_ms(self, ms):
        self.now += ms


class FakePin(Pin):
    def __init__(self, clock, name, number, invert=False, open_drain=False):
        Pin.__init__(self, name, number, invert, open_drain)
        self.clock = clock

    def _drive(self, wire_level):
        self.clock.log.append((self.clock.now, self.name, wire_level))


class PrintPin(Pin):
    """--dry-run: say what would be driven."""

    def __init__(self, out, name, number, invert=False, open_drain=False):
        Pin.__init__(self, name, number, invert, open_drain)
        self.out = out

    def _drive(self, wire_level):
        if self.open_drain and wire_level:
            what = "released (input, pulled up)"
        else:
            what = "high" if wire_level else "low"
        self.out("%s (BCM %d): %s" % (self.name, self.number, what))


def import_gpio():
    """RPi.GPIO, imported only now; GpioError with the package to install if it is absent."""
    try:
        import RPi.GPIO as GPIO
    except ImportError:
        raise GpioError(GPIO_MISSING)
    except RuntimeError as e:     # RPi.GPIO on a non-Pi or on a Pi 5
        raise GpioError("RPi.GPIO cannot run here (%s); on a Raspberry Pi 5 replace it by "
                        "rpi-lgpio: pip uninstall RPi.GPIO; pip install rpi-lgpio" % e)
    return GPIO


class RpiPin(Pin):
    """A BCM-numbered GPIO through RPi.GPIO (or rpi-lgpio's drop-in module)."""

    def __init__(self, gpio, name, number, invert=False, open_drain=False):
        Pin.__init__(self, name, number, invert, open_drain)
        self.gpio = gpio
        self._output = None
        try:
            gpio.setwarnings(False)
            gpio.setmode(gpio.BCM)
        except Exception as e:
            raise GpioError("cannot use the GPIO here: %s" % e)

    def _drive(self, wire_level):
        g = self.gpio
        try:
            if self.open_drain and wire_level:
                g.setup(self.number, g.IN)       # released: the board's pull-up holds it high
                self._output = False
            elif self._output:
                g.output(self.number, g.HIGH if wire_level else g.LOW)
            else:
                g.setup(self.number, g.OUT, initial=g.HIGH if wire_level else g.LOW)
                self._output = True
        except Exception as e:
            raise GpioError("GPIO %d (%s): %s (are you in the gpio group?)"
                            % (self.number, self.name, e))

    def close(self):
        if self.open_drain:
            try:
                self.gpio.cleanup(self.number)   # back to an input: the line is released
            except Exception:
                pass


# ------------------------------------------------------------------ sequences
def reset(run, sleep_ms, ms=RESET_MS):
    """Pulse RUN low: the board restarts into its firmware."""
    run.set(0)
    sleep_ms(ms)
    run.set(1)


def bootsel(run, bootsel_pin, sleep_ms, reset_ms=RESET_MS, setup_ms=BOOTSEL_SETUP_MS,
            hold_ms=BOOTSEL_HOLD_MS):
    """BOOTSEL low, RUN pulsed low, BOOTSEL kept low past the boot ROM's check, released:
    the RP2040 comes up as the USB mass-storage bootloader."""
    bootsel_pin.set(0)
    sleep_ms(setup_ms)
    run.set(0)
    sleep_ms(reset_ms)
    run.set(1)
    sleep_ms(hold_ms)
    bootsel_pin.set(1)


def press(pwrkey, sleep_ms, ms):
    """Press the modem's PWRKEY for ms (asserted = logical 1; its `invert` maps the wiring)."""
    pwrkey.set(0)
    pwrkey.set(1)
    sleep_ms(ms)
    pwrkey.set(0)


# ------------------------------------------------------------------ CLI
def load_config(path):
    """Board config values (PIN_PWRKEY, PWRKEY_INVERT); {} if the default file is absent."""
    if path is None:
        path = DEFAULT_CONFIG
        if not os.path.exists(path):
            return {}
    if not os.path.exists(path):
        raise SystemExit("mptcp-board: no board config %s" % path)
    try:
        return runpy.run_path(path)
    except Exception as e:
        raise SystemExit("mptcp-board: board config %s does not load: %s" % (path, e))


def _ms(lo, hi):
    def conv(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError("%r is not a whole number of ms" % s)
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError("%d ms is outside %d..%d" % (v, lo, hi))
        return v
    return conv


def _bcm(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a BCM GPIO number" % s)
    if not 0 <= v <= 27:
        raise argparse.ArgumentTypeError("GPIO %d is not on the 40-pin header (BCM 0..27)" % v)
    return v


def _common(ap, default):
    """Options accepted before or after the command (`mptcp-board reset --dry-run` too)."""
    d = (lambda v: v) if default else (lambda v: argparse.SUPPRESS)
    ap.add_argument("--dry-run", action="store_true", default=d(False),
                    help="print what would be done; drive nothing")
    ap.add_argument("--config", default=d(None),
                    help="board config file (default boards/rpi/mptcp_board.py)")
    ap.add_argument("--run-pin", type=_bcm, default=d(None),
                    help="BCM GPIO wired to RUN (default %d)" % PIN_RUN)
    ap.add_argument("--bootsel-pin", type=_bcm, default=d(None),
                    help="BCM GPIO wired to BOOTSEL (default %d)" % PIN_BOOTSEL)
    ap.add_argument("--pwrkey-pin", type=_bcm, default=d(None),
                    help="BCM GPIO wired to the modem's PWRKEY (default: the config's "
                         "PIN_PWRKEY, else %d)" % PIN_PWRKEY)
    ap.add_argument("--run-invert", action="store_true", default=d(False),
                    help="RUN driven through an inverter")
    ap.add_argument("--bootsel-invert", action="store_true", default=d(False),
                    help="BOOTSEL driven through an inverter")
    ap.add_argument("--pwrkey-invert", action="store_true", default=d(False),
                    help="PWRKEY pressed at GPIO low (wired straight to the key)")


def parser():
    ap = argparse.ArgumentParser(
        prog="mptcp-board",
        description="Drive an attached Pico's RUN/BOOTSEL and the modem's PWRKEY from a "
                    "Raspberry Pi's GPIO (BCM numbering).",
        epilog="Defaults: RUN GPIO %d, BOOTSEL GPIO %d (this tool), PWRKEY the board "
               "config's PIN_PWRKEY (boards/rpi/mptcp_board.py). RUN and BOOTSEL are open drain "
               "(high = released). Needs RPi.GPIO: pip install 'mptcp-embedded-host[rpi]' "
               "(Pi 5: rpi-lgpio)." % (PIN_RUN, PIN_BOOTSEL))
    _common(ap, True)
    sub = ap.add_subparsers(dest="cmd", metavar="{reset,bootsel,modem-power}")
    r = sub.add_parser("reset", help="pulse RUN low: restart the board")
    _common(r, False)
    r.add_argument("--reset-ms", type=_ms(1, 5000), default=RESET_MS,
                   help="RUN held low (default %d)" % RESET_MS)
    b = sub.add_parser("bootsel", help="restart the board into its USB bootloader")
    _common(b, False)
    b.add_argument("--reset-ms", type=_ms(1, 5000), default=RESET_MS,
                   help="RUN held low (default %d)" % RESET_MS)
    b.add_argument("--hold-ms", type=_ms(1, 10000), default=BOOTSEL_HOLD_MS,
                   help="BOOTSEL kept low after RUN is released (default %d)" % BOOTSEL_HOLD_MS)
    m = sub.add_parser("modem-power", help="press the modem's PWRKEY")
    _common(m, False)
    m.add_argument("action", nargs="?", default="pulse", choices=("on", "off", "pulse"))
    m.add_argument("--pulse-ms", type=_ms(1, MAX_PRESS_MS), default=PULSE_MS,
                   help="press length of `pulse` (default %d; modems want 500-2000)" % PULSE_MS)
    m.add_argument("--on-ms", type=_ms(1, MAX_PRESS_MS), default=ON_MS,
                   help="press length of `on` (default %d)" % ON_MS)
    m.add_argument("--off-ms", type=_ms(1, MAX_PRESS_MS), default=OFF_MS,
                   help="press length of `off` (default %d: SIM7600 needs >= 2500)" % OFF_MS)
    return ap


def parse(argv):
    ap = parser()
    a = ap.parse_args(argv)
    if a.cmd is None:
        ap.error("say what to do: reset, bootsel or modem-power")
    return a


def execute(a, make_pin, sleep_ms):
    """Run parsed command `a` on the pins made by make_pin(name, number, invert, open_drain)."""
    cfg = load_config(a.config)
    pins = []

    def pin(name, number, invert, open_drain):
        p = make_pin(name, number, invert, open_drain)
        pins.append(p)
        return p
    try:
        if a.cmd == "reset":
            p_run = pin("RUN", a.run_pin if a.run_pin is not None else PIN_RUN,
                        a.run_invert, True)
            reset(p_run, sleep_ms, a.reset_ms)
        elif a.cmd == "bootsel":
            p_run = pin("RUN", a.run_pin if a.run_pin is not None else PIN_RUN,
                        a.run_invert, True)
            p_boot = pin("BOOTSEL", a.bootsel_pin if a.bootsel_pin is not None else PIN_BOOTSEL,
                         a.bootsel_invert, True)
            bootsel(p_run, p_boot, sleep_ms, a.reset_ms, BOOTSEL_SETUP_MS, a.hold_ms)
        else:
            number = a.pwrkey_pin
            if number is None:
                number = cfg.get("PIN_PWRKEY", PIN_PWRKEY)
            invert = a.pwrkey_invert or bool(cfg.get("PWRKEY_INVERT", False))
            p_key = pin("PWRKEY", number, invert, False)
            ms = {"on": a.on_ms, "off": a.off_ms, "pulse": a.pulse_ms}[a.action]
            press(p_key, sleep_ms, ms)
    finally:
        for p in pins:
            p.close()
    return 0


def dry_run_backend(out=print):
    def make_pin(name, number, invert, open_drain):
        return PrintPin(out, name, number, invert, open_drain)

    def sleep_ms(ms):
        out("wait %d ms" % ms)
    return make_pin, sleep_ms


def gpio_backend():
    """RpiPin factory; RPi.GPIO is imported when the first pin is made."""
    gpio_box = []

    def make_pin(name, number, invert, open_drain):
        if not gpio_box:
            gpio_box.append(import_gpio())
        return RpiPin(gpio_box[0], name, number, invert, open_drain)

    def sleep_ms(ms):
        time.sleep(ms / 1000)
    return make_pin, sleep_ms


def main(argv=None):
    a = parse(sys.argv[1:] if argv is None else argv)
    if a.dry_run:
        print("mptcp-board: dry run, no pin is driven")
        make_pin, sleep_ms = dry_run_backend()
    else:
        make_pin, sleep_ms = gpio_backend()
    try:
        return execute(a, make_pin, sleep_ms)
    except GpioError as e:
        print("mptcp-board: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
