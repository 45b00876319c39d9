"""Echo: every kind of message comes back unchanged and with its type;
pings get pongs. argv: the URL of an echo route."""

import asyncio
import os

from wsclient import OP_CONT, OP_TEXT, connect, log, roundtrip, run

PING_PAYLOAD = b"are you there"


async def main(url):
    async with connect(url, max_size=None) as ws:
        await roundtrip(ws, "hello", "text")
        await roundtrip(ws, b"\x00\x01\xffbinary", "binary")
        await roundtrip(ws, "", "empty text")
        await roundtrip(ws, b"", "empty binary")
        await roundtrip(ws, "héllo wörld ✓ 😀", "multi-byte text")
        await roundtrip(ws, "x" * 125, "text of 125 bytes")
        await roundtrip(ws, "y" * 126, "text of 126 bytes (16-bit length)")
        await roundtrip(ws, b"z" * 65535, "binary of 65535 bytes")
        await roundtrip(ws, b"w" * 65536, "binary of 65536 bytes (64-bit length)")
        await roundtrip(ws, os.urandom(1 << 20), "1 MiB binary")
        unit = "aé✓😀"  # 1 + 2 + 3 + 4 bytes
        big = unit * ((3 << 20) // len(unit.encode()))
        assert len(big.encode()) >= 3 * (1 << 20) - 10
        await roundtrip(ws, big, "3 MiB multi-byte text")

        # Fragmented messages (legacy send of an iterable: one frame per
        # fragment, then an empty final continuation frame).
        frags = ["héllo ", "", "wörld ", "✓" * 1000, "😀"]
        await roundtrip(ws, frags, "fragmented text", "".join(frags))
        bfrags = [b"\x00" * 10, b"", os.urandom(70000), b"end"]
        await roundtrip(ws, bfrags, "fragmented binary", b"".join(bfrags))
        many = [bytes([i]) * 100 for i in range(200)]
        await roundtrip(ws, many, "binary in 200 fragments", b"".join(many))

        # A ping gets a pong with its payload.
        pong = await ws.ping(PING_PAYLOAD)
        await asyncio.wait_for(pong, 20)
        log("ping: pong received")

        # A ping between the fragments of a message is answered, and the
        # message still comes back whole.
        await ws.write_frame(False, OP_TEXT, "part one, ".encode())
        pong = await ws.ping(b"mid-message")
        await ws.write_frame(True, OP_CONT, "part two".encode())
        await asyncio.wait_for(pong, 20)
        got = await ws.recv()
        assert got == "part one, part two", f"interleaved ping: got {got!r}"
        log("ping inside a fragmented message: pong received, message echoed")

        # Many messages sent back to back come back in order.
        sent = [f"message {i}" if i % 2 else f"message {i}".encode() for i in range(200)]
        for m in sent:
            await ws.send(m)
        for i, m in enumerate(sent):
            got = await ws.recv()
            assert got == m, f"pipelined message {i}: got {got!r}, expected {m!r}"
        log("200 pipelined messages: echoed in order")

        await ws.close()
        log(f"client close: code {ws.close_code}")
        assert ws.close_code == 1000, f"client close: code {ws.close_code}, expected 1000"


run(main)
