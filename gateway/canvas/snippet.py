"""The script every served HTML page gets before its last ``</body>`` (CONTROL-UI.md 7).

It opens ``ws(s)://<host>/__smart-agent-neo__/ws`` (``window.smartAgentNeoLiveReload``) and
reloads the page when the server says ``reload`` (reconnecting quietly if the server goes
away), and it defines the A2UI action
bridge: ``window.smartAgentNeoSendUserAction(action)`` posts the action as JSON to the native
app's handler -- ``webkit.messageHandlers.smartAgentNeoCanvasA2UIAction`` on iOS/macOS,
``window.smartAgentNeoCanvasA2UIAction`` on Android -- and answers ``false`` where neither
exists (a plain browser).
"""

from __future__ import annotations

import re

WS_PATH = "/__smart-agent-neo__/ws"
BRIDGE = "smartAgentNeoCanvasA2UIAction"

SCRIPT = (
    "<script>(function(){"
    f'var H="{BRIDGE}";'
    "window.smartAgentNeoSendUserAction=function(a){var m=JSON.stringify(a);"
    "var w=window.webkit&&window.webkit.messageHandlers&&window.webkit.messageHandlers[H];"
    "if(w){w.postMessage(m);return true}"
    "if(window[H]&&window[H].postMessage){window[H].postMessage(m);return true}return false};"
    "function live(){try{"
    f'var s=new WebSocket((location.protocol==="https:"?"wss://":"ws://")+location.host+"{WS_PATH}");'
    "window.smartAgentNeoLiveReload=s;"
    's.onmessage=function(e){if(e.data==="reload")location.reload()};'
    "s.onclose=function(){setTimeout(live,1000)}}catch(e){}}"
    "LIVE})();</script>"
)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


def script(live_reload: bool) -> str:
    return SCRIPT.replace("LIVE", "live();" if live_reload else "")


def inject(html: str, live_reload: bool) -> str:
    """The page with the script before its last ``</body>`` (appended if it has none)."""
    tag = script(live_reload)
    ends = list(_BODY_END.finditer(html))
    if not ends:
        return html + tag
    at = ends[-1].start()
    return html[:at] + tag + html[at:]
