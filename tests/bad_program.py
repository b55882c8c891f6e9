"""A program that misbehaves in one way, for tests/test_command.py: bad_program.py MODE PROGRAM... PROBLEM RESULT.

It runs PROGRAM (a correct one: examples/c/mlp) on the problem, then spoils what it wrote as MODE says: exit
(non-zero, saying why on stderr), hang (past any timeout, with a child of its own whose pid it writes to the file
$BAD_PROGRAM_PIDFILE), late (the correct result written, then exit 1: the status is what counts), none (no result
written), truncated, dtype (every tensor float32), shape, missing, extra,
nan (a gradient).
"""

import os
import subprocess
import sys
import time


def main():
    mode, *program, problem, result = sys.argv[1:]
    if mode == "exit":
        print("bad_program: pretending to crash", file=sys.stderr)
        return 3
    if mode == "hang":
        child = subprocess.Popen(["sleep", "600"])
        with open(os.environ["BAD_PROGRAM_PIDFILE"], "w") as f:
            f.write(str(child.pid))
        time.sleep(600)
    if mode == "none":
        return 0
    import numpy as np  # after the hang: started at once, before any timeout (imports take a while under load)
    import safetensors.numpy as st
    from safetensors import safe_open

    subprocess.run([*program, problem, result], check=True)
    if mode == "late":
        print("bad_program: wrote a result, then failed", file=sys.stderr)
        return 1
    if mode == "truncated":
        data = open(result, "rb").read()
        open(result, "wb").write(data[:len(data) // 2])
        return 0
    tensors = st.load_file(result)
    with safe_open(result, "np") as f:
        metadata = f.metadata()
    if mode == "dtype":
        tensors = {k: v.astype(np.float32) for k, v in tensors.items()}
    elif "grad.layer1.weight" in tensors:
        if mode == "shape":
            tensors["grad.layer2.weight"] = np.ascontiguousarray(tensors["grad.layer2.weight"].T)
        elif mode == "missing":
            del tensors["grad.layer1.bias"]
        elif mode == "extra":
            tensors["grad.layer3.weight"] = tensors["grad.layer2.weight"]
        elif mode == "nan":
            tensors["grad.layer1.weight"][0, 1] = np.nan
    st.save_file(tensors, result, metadata=metadata)
    return 0


if __name__ == "__main__":
    sys.exit(main())
