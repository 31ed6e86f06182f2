import loom

@loom.kind("acme.shout")
def shout(text: str, *, suffix: str = "!") -> str:
    return text.upper() + suffix

g = loom.Graph("hello")
g.node("hi", "source.value", value="hello loom", repeat=3) >> g.node("shout", shout) >> g.node("out", "sink.stdout")
report = loom.run(g, threads=2)
print(report["out"].in_, "values in", f"{report.seconds:.3f} s")
