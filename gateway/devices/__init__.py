"""Device identity (Ed25519), device pairing and per-role device tokens.

identity.py       the signed connect payloads (v3, v2) and the proof check (pure)
pairing.py        pending/paired devices and their tokens: the state machine (pure)
service.py        DeviceService: the store on disk, events, invalidating connections
connect.py        admit(): the device half of a connect (proof, token sign-in, pairing)
"""
