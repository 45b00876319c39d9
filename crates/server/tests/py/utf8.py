"""Text must be UTF-8: invalid text closes with 1007, while a character cut
across fragments is fine. argv: the URL of an echo route."""

from wsclient import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_TEXT,
    connect,
    expect_close,
    log,
    roundtrip,
    run,
    send_then_expect_close,
)


async def fragments(ws, first_opcode, parts):
    """Sends `parts` as one message: the first with `first_opcode`, the
    others as continuations, the last with FIN."""
    for i, part in enumerate(parts):
        await ws.write_frame(i == len(parts) - 1, first_opcode if i == 0 else OP_CONT, part)


async def main(url):
    async with connect(url) as ws:
        # "é" is C3 A9: cut between the fragments.
        await fragments(ws, OP_TEXT, [b"\xc3", b"\xa9"])
        got = await ws.recv()
        assert got == "é", f"split 2-byte char: got {got!r}"
        log("'é' split across two fragments: echoed")
        # "😀" is F0 9F 98 80: over three fragments.
        await fragments(ws, OP_TEXT, [b"smile \xf0", b"\x9f\x98", b"\x80!"])
        got = await ws.recv()
        assert got == "smile 😀!", f"split 4-byte char: got {got!r}"
        log("'😀' split across three fragments: echoed")
        # Invalid UTF-8 in a binary message is just bytes.
        await fragments(ws, OP_BINARY, [b"\xff\xfe"])
        got = await ws.recv()
        assert got == b"\xff\xfe", f"binary ff fe: got {got!r}"
        log("binary ff fe: echoed")
        await roundtrip(ws, "still open", "after the split characters")

    cases = [
        ("text ff fe", [b"\xff\xfe"]),
        ("C3 then 28 across fragments", [b"\xc3", b"\x28"]),
        ("invalid byte in the second fragment", [b"fine so far ", b"then \xff"]),
        ("message ends inside a character", [b"ok \xe2\x82"]),
        ("message ends inside a character, fragmented", [b"ok ", b"\xe2", b"\x82"]),
        ("surrogate half ED A0 80", [b"\xed\xa0\x80"]),
        ("overlong encoding C0 AF", [b"\xc0\xaf"]),
    ]
    for what, parts in cases:
        async with connect(url) as ws:
            await send_then_expect_close(ws, lambda: fragments(ws, OP_TEXT, parts), 1007, what)

    # A close frame whose reason is not UTF-8.
    async with connect(url) as ws:
        await send_then_expect_close(
            ws, lambda: ws.write_frame(True, OP_CLOSE, b"\x03\xe8bad \xff"), 1007, "close reason ff"
        )


run(main)
