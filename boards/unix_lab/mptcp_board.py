"""Board config: the lab device (MicroPython unix port on x86-64)."""
NAME = "unix_lab"
ARCH = "x64"                 # mpy-cross -march for native/viper modules
HEAP = 384 * 1024            # default MicroPython heap for the device process (mptcp-lab device)
NETIFS = ("wifi", "lte")     # wifi: IP-in-UDP to the lab link emulator; lte: PPP over a pty
WIFI_TUNNEL = ("127.0.0.1", 47001)   # the link emulator's UDP port for the Wi-Fi link
WIFI_ADDR = "198.18.1.2"
LTE_ADDR = "198.18.2.2"
# Memory budget per connection (bytes), see docs/ARCHITECTURE.md
SND_BUF = 32 * 1024
RCV_BUF = 32 * 1024
MAX_CONNECTIONS = 2
# LTE link: the lab's modem emulator on a pty (its path comes from MPTCP_LAB_LTE or --lte-serial)
LTE_SERIAL = None
UART_BAUD = 921600
LTE_PACE = True              # a pty has no UART FIFO: pace writes to the line rate
APN = "internet"
SIM_PIN = None               # e.g. "1234" if the SIM asks for one
PPP_AUTH = None              # or ("chap" | "pap", user, password) if the network asks
MAX_SUBFLOWS = 4
SCHEDULER = "minrtt"
BACKUP_LINK = None         # "lte": join LTE as backup (idle until Wi-Fi fails)
