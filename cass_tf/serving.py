"""Owns the TF Serving clients: `RestClient` (JSON over HTTP) and `GrpcClient` separate audio with a served export.

    from cass_tf.serving import GrpcClient, RestClient
    client = RestClient("http://localhost:8501", model="ppg", sample_rate=64)
    parts = client.separate(x, sample_rate=125)             # {"heart": array, "respiratory": array}
    with GrpcClient("localhost:8500", model="ppg", sample_rate=64) as client:
        parts = client.separate([a, b, "c.wav"])             # a list in, a list of dicts out

The server is tensorflow_model_server (>= 2.21) serving a `cass_tf.export` base directory (see that module for the
Docker command); REST listens on 8501, gRPC on 8500 by default. Both clients call the export's `serving_default`
signature (cass_tf.contract says what it takes and gives).

`separate()` takes what `cass_tf.separate` takes (a 1-D float array, a (channels, samples) array whose channels are
separated as rows of the request, or averaged first with `mono=True`, an audio file path, or a list/tuple of those),
validates everything with the same checks before sending anything, and returns the same: {component: float32 array
of the input's shape}, or a list of such dicts for a list.

The model's sample rate cannot be asked over either API (TF Serving exposes only signature defs, not assets), so
pass it as `sample_rate=` when constructing a client: `cass_tf.contract.read_asset(version_dir).sample_rate`,
i.e. "sample_rate" in the export's `assets/cass_config.json`. Inputs at another rate (`separate(x, sample_rate=r)`
or a file's own rate) are resampled to the model's rate with `cass_tf.audio.resample` and the outputs back, as
`cass_tf.separate` does. A client without `sample_rate` treats arrays as already at the model's rate and refuses an
input rate it cannot check (ValueError). `components=` (the config's "components") fixes the dict order and is
checked against what the server returns; without it the served names are returned in sorted order.
For the same reason pass `multilead=True` for a multi-lead model (configs/ecg_leads.json): the asset's config.model.multilead,
`read_asset(version_dir).config.model.multilead`. Its export serves `waveform` [batch, leads, samples], and the
client then does what `cass_tf.separate` does with such a model: a (leads, samples) array is ONE recording, sent as
one [1, leads, samples] request row and returned as (leads, samples) per component; a 1-D array is one lead
([1, 1, samples]).

    client = RestClient("http://localhost:8501", model="ecg", sample_rate=256, multilead=True)
    parts = client.separate(abdominal, sample_rate=1000)    # (4, n) in: {"fetal": (4, n), "maternal": (4, n)}

Likewise pass `cancellation=` (the asset's config.model.cancellation): a "maternal_template" model's graph separates
what maternal template subtraction leaves, so the client subtracts the templates before sending each recording and
adds them back to the maternal output after, as `cass_tf.separate` does (cass_tf.cancellation.around).

Each signal goes whole into one request: the served graph computes one STFT over it (no blocks). Signals of equal
shape (after resampling; a multi-lead client's rows are whole recordings: equal leads and samples) go together, up
to `max_batch` rows per request. Outputs equal `cass_tf.separate` to float32
round-off (its blocks agree with the one-shot result to 1e-5 of the output scale).

Sizes and limits. REST sends the columnar JSON format, samples written with 9 significant digits (exact for float32),
about 12 bytes per sample each way, and tensorflow_model_server cuts REST requests off after
`--rest_api_timeout_in_ms` (30 s by default): prefer gRPC for long audio. gRPC sends raw float32, 4 bytes per sample
in and 4 per sample and component out; both this client and tensorflow_model_server accept messages up to
MAX_MESSAGE_BYTES = 2**31 - 1 bytes (gRPC's and protobuf's ceiling), so one request holds at most about 5e8 samples
over all its leads (hours of audio at 44.1 kHz; the server's memory for the whole-signal STFT is usually the
tighter bound).

Errors from the server (HTTP 4xx/5xx with TF Serving's `{"error": "..."}` body, gRPC status codes), timeouts and
unreachable servers raise `ServingError` (a RuntimeError) naming the URL or target and carrying the server's message.
The REST client uses only the standard library; the gRPC client needs `pip install cass_tf[serving]`.
"""

from __future__ import annotations

import abc
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Optional, Sequence, Union

import numpy as np

from cass_tf.checks import Mixture, check_rate, load_mixtures
from cass_tf.config import CANCELLATIONS
from cass_tf.contract import SERVING_SIGNATURE, WAVEFORM_INPUT
from cass_tf.frontend import Result, separate_mixtures

MAX_MESSAGE_BYTES = 2**31 - 1
DEFAULT_MAX_BATCH = 16


class ServingError(RuntimeError):
    """A TF Serving request failed: `url` (or gRPC target), `status` (HTTP code or gRPC status name, None when the
    server was never reached) and `detail` (the server's own message, or the transport error)."""

    def __init__(self, message: str, url: str, status: Union[int, str, None] = None, detail: str = ""):
        super().__init__(message)
        self.url, self.status, self.detail = url, status, detail


class _Client(abc.ABC):
    """What both clients share: argument checks, input loading, resampling, batching, output checks."""

    def __init__(self, model: str, version: Optional[int], signature: str, timeout: float,
                 sample_rate: Optional[int], components: Optional[Sequence[str]], max_batch: int, multilead: bool,
                 cancellation: str):
        if not isinstance(model, str) or not model or "/" in model or ":" in model:
            raise ValueError(f"model must be a non-empty model name without '/' or ':', got {model!r}")
        if version is not None and (isinstance(version, bool) or not isinstance(version, (int, np.integer))
                                    or version < 1):
            raise ValueError(f"version must be a positive integer or None (the latest), got {version!r}")
        if not isinstance(signature, str) or not signature:
            raise ValueError(f"signature must be a non-empty signature name, got {signature!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if isinstance(max_batch, bool) or not isinstance(max_batch, (int, np.integer)) or max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}")
        if not isinstance(multilead, (bool, np.bool_)):
            raise ValueError(f"multilead must be True or False (the export's config.model.multilead), "
                             f"got {multilead!r}")
        if cancellation not in CANCELLATIONS:
            raise ValueError(f"cancellation must be one of {list(CANCELLATIONS)} (the export's "
                             f"config.model.cancellation), got {cancellation!r}")
        if cancellation != "none" and sample_rate is None:
            raise ValueError(f"cancellation {cancellation!r} needs sample_rate=<the model's rate>: the templates are "
                             "found at the model's rate")
        if components is not None:
            if isinstance(components, str) or not components or not all(isinstance(c, str) for c in components) \
                    or len(set(components)) != len(components):
                raise ValueError(f"components must be a list of distinct names, got {components!r}")
            components = tuple(components)
        self.model, self.signature, self.timeout = model, signature, float(timeout)
        self.version = None if version is None else int(version)
        self.sample_rate = None if sample_rate is None else check_rate(sample_rate)
        self.components = components
        self.max_batch = int(max_batch)
        self.multilead = bool(multilead)
        self.cancellation = cancellation

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Releases the connection (if any); the client is unusable afterwards for gRPC, a no-op for REST."""

    def separate(self, mixture: Mixture, sample_rate: Optional[int] = None, mono: bool = False) -> Result:
        """Separates like `cass_tf.separate(mixture, model, sample_rate, mono=mono)`, with the model behind the server.

        Everything is validated (ValueError, FileNotFoundError) before the first request; server and transport
        failures raise ServingError.
        """
        if sample_rate is not None:
            sample_rate = check_rate(sample_rate)
        mixtures, many = load_mixtures(mixture, sample_rate)
        backend = self._separate_channels if self.cancellation == "none" else self._separate_cancelled
        return separate_mixtures(mixtures, many, self.sample_rate, backend, mono)

    def _separate_cancelled(self, signals: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """The front end's backend for a model.cancellation model: each signal (one recording) through
        cass_tf.cancellation.around, the server separating its residuals (and templates)."""
        from cass_tf import cancellation  # here: it needs TensorFlow (cass_tf.metrics), the other clients do not
        return [cancellation.around(x, self.sample_rate, self.multilead, lambda m: self._separate_channels([m])[0])
                for x in signals]

    def _separate_channels(self, signals: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """The front end's backend (`_separate_signals` sends the rows): for a one-lead model every channel of every
        signal is a row of its own; for a multi-lead model every signal is one row of its leads (1-D: one lead)."""
        if self.multilead:
            separated = self._separate_signals([np.atleast_2d(x) for x in signals])
            return [{n: v.reshape(x.shape) for n, v in parts.items()} for x, parts in zip(signals, separated)]
        rows = [(i, row) for i, x in enumerate(signals) for row in (x if x.ndim == 2 else x[np.newaxis])]
        separated = self._separate_signals([row for _, row in rows])
        results = []
        for i, x in enumerate(signals):
            mine = [parts for (k, _), parts in zip(rows, separated) if k == i]
            results.append({n: np.stack([p[n] for p in mine]) if x.ndim == 2 else mine[0][n] for n in mine[0]})
        return results

    def _separate_signals(self, signals: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """One dict per signal (a request row: (samples,), or (leads, samples) for a multi-lead model, at the model's
        rate); signals of equal shape share requests of <= rows_per_request."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, x in enumerate(signals):
            groups.setdefault(x.shape, []).append(index)
        steps = {shape: self._rows_per_request(shape) for shape in groups}  # size errors before any request
        results: list[Optional[dict[str, np.ndarray]]] = [None] * len(signals)
        for shape, indices in groups.items():
            step = steps[shape]
            for start in range(0, len(indices), step):
                chunk = indices[start:start + step]
                batch = np.stack([signals[i] for i in chunk]).astype(np.float32, copy=False)
                outputs = self._check_outputs(self._predict(batch), batch.shape)
                for row, index in enumerate(chunk):
                    results[index] = {n: v[row] for n, v in outputs.items()}
        return results  # type: ignore[return-value]

    def _rows_per_request(self, shape: tuple[int, ...]) -> int:
        """How many rows of this shape ((samples,) or (leads, samples)) one request may carry."""
        return self.max_batch

    def _check_outputs(self, outputs: dict[str, Any], shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        """float32 arrays of the request's shape, [batch, (leads,) samples], named and ordered by `components` (or
        sorted), or a ServingError."""
        names = set(outputs)
        if self.components is not None and names != set(self.components):
            raise self._error(f"the server returned outputs {sorted(names)}, expected the components "
                              f"{list(self.components)}; check model={self.model!r} and signature={self.signature!r}")
        checked = {}
        for name in (self.components if self.components is not None else sorted(names)):
            try:
                value = np.asarray(outputs[name], dtype=np.float32)
            except (TypeError, ValueError) as e:
                raise self._error(f"output {name!r} is not a numeric array ({e})") from None
            if value.shape != tuple(shape):
                raise self._error(f"output {name!r} has shape {value.shape}, expected {tuple(shape)} "
                                  f"(the {self.signature!r} signature does not map waveforms to waveforms?)")
            checked[name] = value
        return checked

    @abc.abstractmethod
    def _predict(self, batch: np.ndarray) -> dict[str, Any]:
        """{output name: [rows, (leads,) samples] array} for one request."""

    @abc.abstractmethod
    def _error(self, message: str, status: Union[int, str, None] = None, detail: str = "") -> ServingError:
        """A ServingError naming this client's server."""


class RestClient(_Client):
    """TF Serving's REST API: `POST {url}/v1/models/{model}[/versions/{version}]:predict` (columnar JSON).

    url: the server's REST address (scheme, host, port; a path prefix is kept, e.g. behind a proxy).
    model: the served model name (models.config's `name`, or MODEL_NAME in the serving container).
    version: a version number, or None for the server's latest. signature: the signature to call.
    timeout: seconds per socket operation. sample_rate: the model's rate (see the module doc).
    components: the expected output names, in the order wanted. max_batch: signals per request at most.
    multilead: the model takes a recording's leads together (the asset's config.model.multilead; module doc).
    cancellation: the asset's config.model.cancellation; "maternal_template" (needs sample_rate) cancels the maternal
    beats before sending and adds them back after (cass_tf.cancellation.around), as `cass_tf.separate` does.
    Uses the standard library only (urllib), including its proxy settings from the environment.
    """

    def __init__(self, url: str = "http://localhost:8501", model: str = "ecg", version: Optional[int] = None,
                 signature: str = SERVING_SIGNATURE, timeout: float = 60.0, sample_rate: Optional[int] = None, *,
                 components: Optional[Sequence[str]] = None, max_batch: int = DEFAULT_MAX_BATCH,
                 multilead: bool = False, cancellation: str = "none"):
        super().__init__(model, version, signature, timeout, sample_rate, components, max_batch, multilead,
                         cancellation)
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"url must be an http(s) address like 'http://localhost:8501', got {url!r}")
        self.url = url.rstrip("/")
        self._single_output: Optional[str] = None

    def __repr__(self) -> str:
        return f"RestClient({self.url!r}, model={self.model!r}, version={self.version}, signature={self.signature!r})"

    @property
    def model_url(self) -> str:
        """`{url}/v1/models/{model}[/versions/{version}]`: the base of every request."""
        base = f"{self.url}/v1/models/{urllib.parse.quote(self.model, safe='')}"
        return base if self.version is None else f"{base}/versions/{self.version}"

    @property
    def predict_url(self) -> str:
        return self.model_url + ":predict"

    def metadata(self) -> dict[str, Any]:
        """`GET {model_url}/metadata`: the server's JSON, {"model_spec": {...}, "metadata": {"signature_def":
        {"signature_def": {name: {"inputs": ..., "outputs": ..., "method_name": ...}}}}}."""
        return self._call("GET", self.model_url + "/metadata")

    def request_body(self, batch: np.ndarray) -> bytes:
        """The JSON body of a predict request for a float32 [batch, (leads,) samples] array (the columnar format)."""
        return (f'{{"signature_name": {json.dumps(self.signature)}, '
                f'"inputs": {{{json.dumps(WAVEFORM_INPUT)}: {_json_array(batch)}}}}}').encode("ascii")

    def _predict(self, batch: np.ndarray) -> dict[str, Any]:
        payload = self._call("POST", self.predict_url, self.request_body(batch))
        if not isinstance(payload, dict) or "outputs" not in payload:
            keys = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
            raise self._error(f"the response has no 'outputs' (got {keys}); expected TF Serving's columnar response",
                              status=200)
        outputs = payload["outputs"]
        if isinstance(outputs, dict):
            return outputs
        # A signature with one output is answered {"outputs": <value>}, without its name.
        return {self._single_output_name(): outputs}

    def _single_output_name(self) -> str:
        if self.components is not None:
            if len(self.components) != 1:
                raise self._error(f"the server returned one unnamed output, expected the components "
                                  f"{list(self.components)}", status=200)
            return self.components[0]
        if self._single_output is None:
            signatures = self.metadata().get("metadata", {}).get("signature_def", {}).get("signature_def", {})
            outputs = sorted(signatures.get(self.signature, {}).get("outputs", {}))
            if len(outputs) != 1:
                raise self._error(f"the server returned one unnamed output but the metadata of signature "
                                  f"{self.signature!r} lists outputs {outputs}", status=200)
            self._single_output = outputs[0]
        return self._single_output

    def _call(self, method: str, url: str, body: Optional[bytes] = None) -> Any:
        """One HTTP exchange; the parsed JSON response, or a ServingError naming `url`."""
        request = urllib.request.Request(url, data=body, method=method,
                                         headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                status, text = response.status, response.read()
        except urllib.error.HTTPError as e:
            try:
                text = e.read()
            except OSError:
                text = b""
            detail = _error_message(text) or e.reason
            message = f"{method} {url} failed with HTTP {e.code}: {detail}"
            raise ServingError(message, url, e.code, str(detail)) from None
        except urllib.error.URLError as e:
            reason = e.reason
            if isinstance(reason, TimeoutError):
                message = f"{method} {url} timed out after {self.timeout:g} s"
                raise ServingError(message, url, None, str(reason)) from None
            raise ServingError(f"cannot reach the model server at {url}: {reason}", url, None, str(reason)) from None
        except TimeoutError as e:  # socket.timeout is TimeoutError: raised while reading the response
            raise ServingError(f"{method} {url} timed out after {self.timeout:g} s", url, None, str(e)) from None
        except OSError as e:  # connection reset, remote disconnected, ...
            raise ServingError(f"{method} {url} failed: {e}", url, None, str(e)) from None
        try:
            return json.loads(text)
        except ValueError:
            snippet = text[:200].decode("utf-8", "replace")
            raise ServingError(f"{method} {url} returned HTTP {status} but not JSON: {snippet!r}", url, status,
                               snippet) from None

    def _error(self, message: str, status: Union[int, str, None] = None, detail: str = "") -> ServingError:
        return ServingError(f"{self.predict_url}: {message}", self.predict_url, status, detail or message)


class GrpcClient(_Client):
    """TF Serving's gRPC PredictionService: `Predict` with a PredictRequest on `target` ("host:port").

    Arguments as RestClient's, plus `credentials` (grpc.ChannelCredentials for TLS; None: an insecure channel) and
    `max_message_bytes` (the channel's send and receive limit, see the module doc). Needs tensorflow-serving-api
    (`pip install cass_tf[serving]`). The channel opens lazily; `close()` it, or use the client as a context manager.
    """

    def __init__(self, target: str = "localhost:8500", model: str = "ecg", version: Optional[int] = None,
                 signature: str = SERVING_SIGNATURE, timeout: float = 60.0, sample_rate: Optional[int] = None, *,
                 components: Optional[Sequence[str]] = None, max_batch: int = DEFAULT_MAX_BATCH,
                 multilead: bool = False, cancellation: str = "none", credentials: Any = None,
                 max_message_bytes: int = MAX_MESSAGE_BYTES):
        super().__init__(model, version, signature, timeout, sample_rate, components, max_batch, multilead,
                         cancellation)
        if not isinstance(target, str) or not target or "://" in target:
            raise ValueError(f"target must be a gRPC address like 'localhost:8500', got {target!r}")
        if isinstance(max_message_bytes, bool) or not isinstance(max_message_bytes, int) \
                or not 0 < max_message_bytes <= MAX_MESSAGE_BYTES:
            raise ValueError(f"max_message_bytes must be in 1..{MAX_MESSAGE_BYTES}, got {max_message_bytes!r}")
        self._api = _serving_api()
        grpc = self._api["grpc"]
        self.target, self.max_message_bytes = target, max_message_bytes
        options = [("grpc.max_send_message_length", max_message_bytes),
                   ("grpc.max_receive_message_length", max_message_bytes)]
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            self._channel = grpc.secure_channel(target, credentials, options=options)
        self._stub = self._api["prediction_service_pb2_grpc"].PredictionServiceStub(self._channel)

    def __repr__(self) -> str:
        return (f"GrpcClient({self.target!r}, model={self.model!r}, version={self.version}, "
                f"signature={self.signature!r})")

    def close(self) -> None:
        self._channel.close()

    def metadata(self) -> dict[str, Any]:
        """GetModelMetadata (signature_def) as the REST API's JSON: {"model_spec": {...}, "metadata":
        {"signature_def": {"signature_def": {name: {"inputs": ..., "outputs": ..., "method_name": ...}}}}}."""
        from google.protobuf import json_format  # optional extra [serving] (GrpcClient only)

        api = self._api
        request = api["get_model_metadata_pb2"].GetModelMetadataRequest()
        self._fill_spec(request.model_spec)
        request.metadata_field.append("signature_def")
        response = self._rpc("GetModelMetadata", request)
        signature_map = api["get_model_metadata_pb2"].SignatureDefMap()
        if "signature_def" not in response.metadata or not response.metadata["signature_def"].Unpack(signature_map):
            raise self._error("the GetModelMetadata response has no signature_def map")
        spec = response.model_spec
        model_spec = {"name": spec.name, "signature_name": spec.signature_name}
        if spec.HasField("version"):
            model_spec["version"] = str(spec.version.value)  # int64 is a string in proto3 JSON
        return {"model_spec": model_spec,
                "metadata": {"signature_def": json_format.MessageToDict(signature_map,
                                                                        preserving_proto_field_name=True)}}

    def predict_request(self, batch: np.ndarray) -> Any:
        """The PredictRequest for a float32 [batch, (leads,) samples] array (its TensorProto has that shape)."""
        tf = self._api["tf"]
        request = self._api["predict_pb2"].PredictRequest()
        self._fill_spec(request.model_spec)
        request.inputs[WAVEFORM_INPUT].CopyFrom(tf.make_tensor_proto(batch, dtype=tf.float32))
        return request

    def _fill_spec(self, spec: Any) -> None:
        spec.name = self.model
        spec.signature_name = self.signature
        if self.version is not None:
            spec.version.value = self.version

    def _rows_per_request(self, shape: tuple[int, ...]) -> int:
        row_bytes = 4 * math.prod(shape) * max(1, len(self.components or ()))  # every lead's samples
        if row_bytes + 4096 > self.max_message_bytes:
            size = f"{shape[0]} leads x {shape[1]} samples" if len(shape) == 2 else f"{shape[0]} samples"
            raise ValueError(f"a signal of {size} needs about {row_bytes} bytes per gRPC message, over "
                             f"max_message_bytes={self.max_message_bytes}; send it in shorter pieces")
        return max(1, min(self.max_batch, (self.max_message_bytes - 4096) // row_bytes))

    def _predict(self, batch: np.ndarray) -> dict[str, Any]:
        response = self._rpc("Predict", self.predict_request(batch))
        tf = self._api["tf"]
        outputs = {}
        for name, proto in response.outputs.items():
            try:
                outputs[name] = tf.make_ndarray(proto)
            except Exception as e:  # noqa: BLE001 (malformed TensorProtos raise several types)
                raise self._error(f"output {name!r} is not a readable tensor ({e})") from None
        return outputs

    def _rpc(self, method: str, request: Any) -> Any:
        grpc = self._api["grpc"]
        try:
            return getattr(self._stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as e:
            code = e.code() if callable(getattr(e, "code", None)) else None
            details = e.details() if callable(getattr(e, "details", None)) else str(e)
            name = code.name if code is not None else "UNKNOWN"
            hint = f" (no answer within {self.timeout:g} s)" if name == "DEADLINE_EXCEEDED" else ""
            raise ServingError(f"gRPC {method} to {self.target} (model {self.model!r}) failed: {name}: {details}{hint}",
                               self.target, name, details or "") from None

    def _error(self, message: str, status: Union[int, str, None] = None, detail: str = "") -> ServingError:
        return ServingError(f"gRPC {self.target} (model {self.model!r}): {message}", self.target, status,
                            detail or message)


def _json_array(values: np.ndarray) -> str:
    """A float array as nested JSON lists of `_float32_text` numbers (row after row, any rank >= 1)."""
    if values.ndim == 1:
        return "[" + ",".join(map(_float32_text, values.tolist())) + "]"
    return "[" + ",".join(_json_array(row) for row in values) + "]"


def _float32_text(value: float) -> str:
    """9 significant digits: enough to read back every float32 exactly."""
    return f"{value:.9g}"


def _error_message(body: bytes) -> str:
    """TF Serving's {"error": "..."} message, else the start of the body as text."""
    text = body.decode("utf-8", "replace")
    try:
        payload = json.loads(text)
    except ValueError:
        return text.strip()[:500]
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        return payload["error"]
    return text.strip()[:500]


def _serving_api() -> dict[str, Any]:
    """grpc, TensorFlow and the tensorflow_serving.apis modules, or an ImportError saying what to install."""
    try:
        import grpc  # optional extra [serving]
        from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc  # ditto
    except ImportError as e:
        raise ImportError(f"cass_tf.serving.GrpcClient needs grpcio and tensorflow-serving-api ({e}); install them "
                          "with `pip install cass_tf[serving]` (or use RestClient, which needs neither)") from e
    import tensorflow as tf  # optional extra [serving]'s path: RestClient users never load TensorFlow

    return {"grpc": grpc, "tf": tf, "predict_pb2": predict_pb2, "get_model_metadata_pb2": get_model_metadata_pb2,
            "prediction_service_pb2_grpc": prediction_service_pb2_grpc}


__all__ = ["RestClient", "GrpcClient", "ServingError", "MAX_MESSAGE_BYTES"]
