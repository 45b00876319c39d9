"""Size limits close with 1009. argv: the URL of an echo route with
max_message = 64 KiB, then one with max_frame = 16 KiB and max_message = 1 MiB."""

from wsclient import connect, expect_close, log, roundtrip, run, send_then_expect_close

KIB = 1024


async def main(small_url, frames_url):
    # At the limit is fine.
    async with connect(small_url) as ws:
        await roundtrip(ws, b"a" * (64 * KIB), "binary of exactly 64 KiB")
        await roundtrip(ws, ["é" * (16 * KIB)] * 2, "text of 64 KiB in 2 fragments", "é" * (32 * KIB))

    async with connect(small_url) as ws:
        await send_then_expect_close(ws, lambda: ws.send(b"b" * (100 * KIB)), 1009, "binary of 100 KiB")

    async with connect(small_url) as ws:
        await send_then_expect_close(ws, lambda: ws.send("t" * (100 * KIB)), 1009, "text of 100 KiB")

    async with connect(small_url) as ws:
        frags = [b"f" * (30 * KIB)] * 3
        await send_then_expect_close(ws, lambda: ws.send(frags), 1009, "3 fragments of 30 KiB")

    # The frame limit applies to each frame, the message limit to the sum.
    async with connect(frames_url) as ws:
        await roundtrip(ws, b"c" * (16 * KIB), "frame of exactly 16 KiB")
        frags = [b"d" * (8 * KIB)] * 20
        await roundtrip(ws, frags, "160 KiB in 8 KiB fragments", b"".join(frags))

    async with connect(frames_url) as ws:
        await send_then_expect_close(ws, lambda: ws.send(b"e" * (32 * KIB)), 1009, "frame of 32 KiB")

    async with connect(frames_url) as ws:
        frags = [b"g" * (16 * KIB)] * 65
        await send_then_expect_close(ws, lambda: ws.send(frags), 1009, "1040 KiB in 16 KiB fragments")

    log("size limits: all as expected")


run(main)
