"""Run exported models: one :class:`InferenceSession` over PyTorch modules, ONNX Runtime
(``.onnx``) and ``torch.export`` programs (``.pt2``), and adapters that put a session where
the library expects a backbone (:class:`SessionBackbone`) or a task model's network
(:func:`bind_dense`, :func:`bind_encoder`; a task's description picks one, and
``pe_dense.tasks.description.bind_task`` binds any task model). onnxruntime is imported only
when an ``.onnx`` file is opened."""

from pe_dense.runtime.adapters import SessionBackbone, bind_dense, bind_encoder
from pe_dense.runtime.session import RUNTIMES, InferenceSession, open_session, read_spec

__all__ = ["InferenceSession", "open_session", "read_spec", "RUNTIMES", "SessionBackbone",
           "bind_dense", "bind_encoder"]
