"""A FastAPI + scikit-learn service for the same model, answering the Open Inference Protocol
infer request that Vigil and MLServer answer (the way such an app is usually written).

Run: MODEL=path/model.joblib uvicorn fastapi_app:app --port PORT
"""
import os
from typing import Any, List, Optional

import joblib
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

model = joblib.load(os.environ["MODEL"])
app = FastAPI()


class Tensor(BaseModel):
    name: str
    shape: List[int]
    datatype: str
    data: List[Any]


class Requested(BaseModel):
    name: str


class InferRequest(BaseModel):
    id: Optional[str] = None
    inputs: List[Tensor]
    outputs: Optional[List[Requested]] = None


@app.post("/v2/models/{name}/infer")
def infer(name: str, req: InferRequest):
    t = req.inputs[0]
    x = np.asarray(t.data, dtype=np.float64).reshape(t.shape)
    p = model.predict_proba(x)
    return {
        "model_name": name,
        "id": req.id,
        "outputs": [{"name": "predict_proba", "datatype": "FP64", "shape": list(p.shape),
                     "data": p.reshape(-1).tolist()}],
    }
