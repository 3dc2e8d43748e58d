"""WhatsApp through Meta's Cloud API (CHANNELS.md 4): webhook in, Graph API out."""
