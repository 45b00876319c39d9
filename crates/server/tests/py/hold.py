"""Connects, checks one echo, says `ready`, then holds the connection open
until it is killed. argv: the URL of an echo route."""

import asyncio

from wsclient import connect, log, roundtrip, run


async def main(url):
    ws = await connect(url)
    await roundtrip(ws, "hello", "before holding")
    log("ready")
    await asyncio.sleep(25)
    raise AssertionError("not killed while holding the connection")


run(main)
