"""Write README.md from the markdown cells of nbs/index.ipynb.

`nbdev-readme` renders through Quarto; this script gives the same text where Quarto is not
installed, so `make export` keeps README.md in sync anywhere.
"""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def main():
    nb = json.loads((ROOT/"nbs/index.ipynb").read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    text = "\n\n".join(cells) + "\n"
    (ROOT/"README.md").write_text("<!-- generated from nbs/index.ipynb by tools/readme.py; do not edit -->\n\n" + text)

if __name__ == "__main__": main()
