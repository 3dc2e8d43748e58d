"""The canvas host: a small static file server on its own port (CONTROL-UI.md 7).

files.py     which file a URL names, traversal-safe, and the response for it (blocking I/O)
snippet.py   the live-reload / A2UI-bridge script inserted into served HTML (pure)
watch.py     mtime snapshots of the root, compared to notice edits (blocking I/O)
host.py      the ASGI app and serve_canvas(): hypercorn's trio server on a socket we bind,
             the watcher, the live-reload sockets
"""
