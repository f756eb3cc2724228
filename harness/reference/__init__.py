"""The reference server's parts: how it behaves, one streamed response, one connection.

`harness.reference_server` starts it (CLI, `running()`); see its docstring.
"""
