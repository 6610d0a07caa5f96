"""Board config: Raspberry Pi (Linux), MicroPython unix port or CPython."""
NAME = "rpi"
ARCH = "armv6"               # 32-bit Raspberry Pi OS; on aarch64 the .mpy arch check fails and the pure fallback runs
HEAP = 1024 * 1024
NETIFS = ("wifi", "lte")
SERIAL = "/dev/serial0"
UART_BAUD = 921600
PIN_PWRKEY = 17
PIN_RESET = 27
APN = "internet"
SND_BUF = 64 * 1024
RCV_BUF = 64 * 1024
MAX_CONNECTIONS = 4
MAX_SUBFLOWS = 4
SCHEDULER = "minrtt"
BACKUP_LINK = None         # "lte": join LTE as backup (idle until Wi-Fi fails)
