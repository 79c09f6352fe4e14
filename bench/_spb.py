import sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench.ingest as b
mode = sys.argv[1]
if mode == "off":
    orig = b.gateway_settings
    def gs(port, buffer_path, subscription=None):
        s = orig(port, buffer_path, subscription)
        return s.model_copy(update={"detection": s.detection.model_copy(update={"enabled": False})})
    b.gateway_settings = gs
    async def noop(*a, **k): pass
with tempfile.TemporaryDirectory() as tmp, b.running_broker(Path(tmp) / "broker") as broker:
    for i in range(int(sys.argv[2]) if len(sys.argv) > 2 else 3):
        n = int(sys.argv[3]) if len(sys.argv) > 3 else 400_000
        if mode == "off":
            import asyncio, time
            # no judged wait: reuse _gateway_run but agent missing -> patch
        try:
            r = b.gateway_drain_rate(broker.port, n, Path(tmp) / f"spb{i}", b.SPB_SUBSCRIPTION, b.sparkplug_messages(n))
            print(mode, f"committed {r.committed_rate:,.0f} judged {r.judged_rate:,.0f} overflows {r.overflows}", flush=True)
        except StopIteration:
            print("no agent")
