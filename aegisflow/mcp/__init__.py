"""The MCP bridge: a stdio proxy in front of a real MCP server (``aegisflow mcp-proxy``)."""
