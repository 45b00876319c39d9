"""The server pings a quiet client often; the client's automatic pongs keep
the connection open past the server's idle timeout. argv: the URL of an
echo route with a short ping interval, and its idle timeout in seconds."""

import asyncio

from wsclient import connect, log, roundtrip, run


async def main(url, idle_timeout):
    quiet = float(idle_timeout) * 1.5
    async with connect(url) as ws:
        await roundtrip(ws, "hello", "before the quiet")
        log(f"quiet for {quiet} s")
        await asyncio.sleep(quiet)
        await roundtrip(ws, "still here", "after the quiet")


run(main)
