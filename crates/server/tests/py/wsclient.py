"""Helpers shared by the WebSocket client scripts that `ws_python.rs` runs.

Each script gets the server URL(s) as arguments, prints what it observes,
and exits non-zero on any mismatch (an AssertionError, any other error, or
the overall timeout).

Only the `websockets` library's legacy (asyncio) client is used: it exists
from 10.x on and keeps `write_frame` and `transport`, which the scripts need
to send frames the library would never send by itself.
"""

import asyncio
import os
import struct
import sys
import traceback
import warnings

warnings.simplefilter("ignore", DeprecationWarning)

import websockets  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidState  # noqa: E402
from websockets.legacy.client import connect as _connect  # noqa: E402

# The whole script must finish within this many seconds.
TIMEOUT = 30.0

# Opcodes (RFC 6455 section 5.2).
OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


def log(*args):
    print(*args, flush=True)


def connect(url, **kwargs):
    """A legacy client connection without compression or keep-alive pings of
    its own (so nothing but what a script sends goes to the server)."""
    kwargs.setdefault("compression", None)
    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("close_timeout", 10)
    kwargs.setdefault("open_timeout", 20)
    return _connect(url, **kwargs)


def raw_frame(fin, opcode, payload, *, masked=True, rsv=0):
    """A client frame built by hand (any opcode, reserved bits, mask or not)."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    n = len(payload)
    mask_bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n <= 0xFFFF:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + body


def short(value, limit=60):
    r = repr(value)
    return r if len(r) <= limit else f"{r[:limit]}... ({len(value)} long)"


async def expect_close(ws, code, what, reason=None):
    """Reads until the connection closes; asserts no message arrived first
    and that the server's close frame carried `code` (and `reason`)."""
    try:
        message = await ws.recv()
        raise AssertionError(f"{what}: expected a close, got message {short(message)}")
    except ConnectionClosed:
        pass
    await ws.wait_closed()
    log(f"{what}: closed with code {ws.close_code} reason {ws.close_reason!r}")
    assert ws.close_code == code, f"{what}: close code {ws.close_code}, expected {code}"
    if reason is not None:
        assert ws.close_reason == reason, f"{what}: close reason {ws.close_reason!r}, expected {reason!r}"


async def send_then_expect_close(ws, send, code, what):
    """Runs `send()` (which the server may cut short by closing), then
    expects the close with `code`."""
    try:
        await send()
    except (ConnectionClosed, InvalidState, ConnectionError) as e:
        log(f"{what}: sending stopped: {type(e).__name__}: {e}")
    await expect_close(ws, code, what)


async def roundtrip(ws, message, what, expected=None):
    """Sends `message` and asserts the echo equals `expected` (default: the
    message) and has its type (text as str, binary as bytes)."""
    if expected is None:
        expected = message
    await ws.send(message)
    got = await ws.recv()
    assert type(got) is type(expected), f"{what}: got {type(got).__name__}, expected {type(expected).__name__}"
    assert got == expected, f"{what}: got {short(got)}, expected {short(expected)}"
    log(f"{what}: echoed ({len(got)} {'chars' if isinstance(got, str) else 'bytes'})")


def run(main):
    """Runs `main(*argv[1:])` with the overall timeout; exits 0 only if it
    completes."""
    log(f"websockets {websockets.__version__}, python {sys.version.split()[0]}")
    try:
        asyncio.run(asyncio.wait_for(main(*sys.argv[1:]), TIMEOUT))
    except asyncio.TimeoutError:
        log(f"FAIL: timed out after {TIMEOUT} s")
        traceback.print_exc()
        sys.exit(3)
    except AssertionError as e:
        log(f"FAIL: {e}")
        traceback.print_exc()
        sys.exit(1)
    except BaseException as e:  # noqa: B036 - any other error is a failure too
        log(f"FAIL: {type(e).__name__}: {e}")
        traceback.print_exc()
        sys.exit(2)
    log("OK")
