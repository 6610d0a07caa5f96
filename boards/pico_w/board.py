"""Board config: Raspberry Pi Pico W (RP2040, 264 KB RAM)."""
NAME = "pico_w"
ARCH = "armv6m"
HEAP = 160 * 1024
NETIFS = ("wifi", "lte")     # wifi: lwIP raw socket; lte: PPP over machine.UART
UART_ID = 0
UART_BAUD = 921600
UART_TX = 0
UART_RX = 1
UART_RTS = 3
UART_CTS = 2
PIN_PWRKEY = 14
PIN_RESET = 15
APN = "internet"
SND_BUF = 16 * 1024
RCV_BUF = 16 * 1024
MAX_CONNECTIONS = 1
