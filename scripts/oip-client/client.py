"""Calls a Vigil server through tritonclient's HTTP client (Open Inference Protocol v2).

Usage: client.py HOST:PORT TOKEN ROWS_JSON
Prints {"release": …, "versions": […], "probability": […]} as JSON.
"""
import json
import sys

import numpy as np
import tritonclient.http as httpclient

MODEL = "deterioration-risk"


def main() -> None:
    addr, token, rows = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    client = httpclient.InferenceServerClient(url=addr)
    auth = {"Authorization": f"Bearer {token}"}
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    meta = client.get_model_metadata(MODEL, headers=auth)
    x = np.array(rows, dtype=np.float32)
    tensor = httpclient.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=False)
    wanted = httpclient.InferRequestedOutput("probability", binary_data=False)
    result = client.infer(MODEL, [tensor], outputs=[wanted], headers=auth)
    p = result.as_numpy("probability")
    response = result.get_response()
    print(json.dumps({
        "release": response["parameters"]["release"],
        "versions": meta["versions"],
        "probability": p.reshape(-1).tolist(),
    }))


if __name__ == "__main__":
    main()
