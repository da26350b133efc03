"""An MCP client built on the official Python SDK (PyPI `mcp`), driving Krake.

Usage: client.py stdio <krake binary> <data dir>      (token in KRAKE_MCP_TOKEN)
       client.py http <url> <token or ->
The calls to make come on stdin as JSON: [[tool, {arguments}], ...]. Prints one JSON object:
the tool names, their input schemas, and each call's error flag and text.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def field(obj, *names):
    for n in names:
        if hasattr(obj, n):
            return getattr(obj, n)
    return None


async def drive(read, write, calls):
    async with ClientSession(read, write) as session:
        await session.initialize()
        listed = await session.list_tools()
        out = {
            "tools": [t.name for t in listed.tools],
            "schemas": {t.name: field(t, "input_schema", "inputSchema") for t in listed.tools},
            "calls": [],
        }
        for name, args in calls:
            try:
                r = await session.call_tool(name, args)
                text = "".join(getattr(c, "text", "") for c in r.content)
                out["calls"].append({"name": name, "is_error": bool(field(r, "is_error", "isError")), "text": text})
            except Exception as e:  # a protocol error (unknown tool, bad request)
                out["calls"].append({"name": name, "is_error": True, "protocol_error": True, "text": str(e)})
        resources = await session.list_resources()
        out["resources"] = [str(r.uri) for r in resources.resources]
        out["read"] = {}
        for uri in out["resources"][:3]:
            try:
                got = await session.read_resource(uri)
                out["read"][uri] = "".join(getattr(c, "text", "") for c in got.contents)
            except Exception as e:
                out["read"][uri] = f"error: {e}"
        print(json.dumps(out))


async def main():
    mode, target, extra = sys.argv[1], sys.argv[2], sys.argv[3]
    calls = json.loads(sys.stdin.read() or "[]")
    if mode == "stdio":
        params = StdioServerParameters(
            command=target,
            args=["--data-dir", extra, "mcp"],
            env={"KRAKE_MCP_TOKEN": os.environ.get("KRAKE_MCP_TOKEN", ""), "KRAKE_LOG": "warn"},
        )
        async with stdio_client(params) as (read, write):
            await drive(read, write, calls)
    else:
        headers = {} if extra == "-" else {"Authorization": f"Bearer {extra}"}
        async with create_mcp_http_client(headers=headers) as http:
            async with streamable_http_client(target, http_client=http) as (read, write):
                await drive(read, write, calls)


asyncio.run(main())
