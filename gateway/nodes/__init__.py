"""Nodes: capability hosts that connect with ``role:"node"`` and run commands for operators.

policy.py         which commands are relayed: platform defaults, allow/deny (pure)
pairing.py        the node pairing store: requests, approvals, tokens (pure)
relay.py          NodeRelay: connected nodes, node.invoke -> node.invoke.request -> result
service.py        NodeService: the pairing store on disk, connect-time pairing, node.list rows
"""
