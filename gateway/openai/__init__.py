"""OpenAI-compatible HTTP formats, translated to and from agent runs (pure, no I/O).

select.py           which agent and session a request targets; the /v1/models list
chat_format.py      Chat Completions: request validation, responses, stream chunks
responses_format.py Responses: request validation, response objects, stream events
"""
