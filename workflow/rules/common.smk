# Shared helpers for the rules.

import json

from icrdesign.io import write_text


def section_config_file(*sections):
    """Write the named config sections (plus the seed) to results/config/<names>.json if changed.

    Rules take this file as an input, so editing one section reruns only the rules that read it.
    """
    path = Path(RESULTS) / "config" / f"{'+'.join(sections)}.json"
    payload = {"seed": config["seed"], **{name: config[name] for name in sections}}
    text = json.dumps(payload, indent=2, sort_keys=True) + "\n"
    if not path.exists() or path.read_text() != text:
        write_text(path, text)
    return str(path)
