"""Protocol errors close with 1002; each is a frame built by hand and
written straight to the transport. argv: the URL of an echo route."""

from wsclient import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    connect,
    log,
    raw_frame,
    roundtrip,
    run,
    send_then_expect_close,
)

CASES = [
    ("reserved opcode 0x3", [raw_frame(True, 0x3, b"hello")]),
    ("reserved opcode 0xB (control)", [raw_frame(True, 0xB, b"")]),
    ("RSV1 set (no extension negotiated)", [raw_frame(True, OP_TEXT, b"hi", rsv=0b100)]),
    ("RSV3 set", [raw_frame(True, OP_BINARY, b"hi", rsv=0b001)]),
    ("unmasked frame", [raw_frame(True, OP_TEXT, b"hello", masked=False)]),
    ("continuation without a message", [raw_frame(True, OP_CONT, b"orphan")]),
    (
        "new message inside a fragmented one",
        [raw_frame(False, OP_TEXT, b"one"), raw_frame(True, OP_TEXT, b"two")],
    ),
    ("fragmented ping", [raw_frame(False, OP_PING, b"p")]),
    ("ping of 126 bytes", [raw_frame(True, OP_PING, b"p" * 126)]),
    ("close with a 1-byte payload", [raw_frame(True, OP_CLOSE, b"\x03")]),
    ("close code 1005 (reserved)", [raw_frame(True, OP_CLOSE, b"\x03\xed")]),
    ("close code 999", [raw_frame(True, OP_CLOSE, b"\x03\xe7")]),
    ("close code 5000", [raw_frame(True, OP_CLOSE, b"\x13\x88")]),
]


async def main(url):
    for what, frames in CASES:
        async with connect(url) as ws:
            await roundtrip(ws, "before", f"{what}: before")

            async def send():
                for f in frames:
                    ws.transport.write(f)
                await ws.drain()

            await send_then_expect_close(ws, send, 1002, what)
    log(f"{len(CASES)} protocol errors: all closed with 1002")


run(main)
