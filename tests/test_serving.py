"""Tests for cass_tf.serving: RestClient and GrpcClient against in-process stand-ins for tensorflow_model_server,
serving the tiny one-lead PPG export and a tiny multi-lead ECG export.

tensorflow_model_server cannot run here, so the two servers below follow TF Serving's own behaviour on the exported
SavedModel (loaded with tf.saved_model.load): the REST predict (columnar "inputs" -> "outputs", a bare value for a
single output) and metadata endpoints with its {"error": ...} bodies and status codes (NOT_FOUND -> 404,
INVALID_ARGUMENT -> 400), and the gRPC PredictionService with its status codes and messages. Only 127.0.0.1.
"""

import http.server
import json
import pathlib
import re
import socket
import sys
import threading
from concurrent import futures

import grpc
import keras
import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from cass_tf.cancellation import cancel
from cass_tf.config import load_config
from cass_tf.contract import read_asset
from cass_tf.exporting import export
from cass_tf.models.cass import CASSModel
from cass_tf.separation import separate
from cass_tf.separator import Separator
from cass_tf.serving import GrpcClient, RestClient, ServingError
from conftest import NAMES, RATE, signal
from test_multilead_separation import NAMES as LEAD_NAMES, REPO, TINY as LEADS_TINY, leads

pytestmark = pytest.mark.slow  # trainings, exports and real subprocesses throughout


MODEL = "tiny"
LEADS = "leads"  # the multi-lead export's served name
CANCELLING = "cancelling"  # the multi-lead maternal-cancellation export's


def assert_same(actual, expected, tol=1e-5):
    """The same components, float32, same lengths, values within tol of the output scale."""
    assert list(actual) == list(expected)
    for name in expected:
        assert actual[name].dtype == np.float32 and actual[name].shape == expected[name].shape, name
        scale = max(1.0, float(np.abs(expected[name]).max()))
        np.testing.assert_allclose(actual[name], expected[name], rtol=0, atol=tol * scale, err_msg=name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- a model server, twice: what tensorflow_model_server does with a SavedModel ----

class Status(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


HTTP_STATUS = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400,
               grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.INTERNAL: 500}


class ServedModel:
    """One SavedModel version served under a name; `outputs` restricts every signature to those outputs."""

    def __init__(self, name, version, path, outputs=None):
        self.name, self.version = name, version
        self.loaded = tf.saved_model.load(str(path))
        proto = saved_model_pb2.SavedModel()
        proto.ParseFromString((pathlib.Path(path) / "saved_model.pb").read_bytes())
        self.signature_defs = {}
        for key, signature in proto.meta_graphs[0].signature_def.items():
            copy = meta_graph_pb2.SignatureDef()
            copy.CopyFrom(signature)
            for output in list(copy.outputs):
                if outputs is not None and output not in outputs:
                    del copy.outputs[output]
            self.signature_defs[key] = copy

    def signature(self, name, rest=False):
        name = name or "serving_default"
        if name not in self.signature_defs:
            if rest:  # the REST handler looks the signature up first (HttpRestApiHandler::GetInfoMap)
                raise Status(grpc.StatusCode.INVALID_ARGUMENT,
                             f'Serving signature name: "{name}" not found in signature def')
            raise Status(grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{name}" not found.')
        return name

    def run(self, signature, inputs):
        infos = self.signature_defs[signature].inputs
        if set(inputs) != set(infos):
            wrong = sorted(set(inputs) - set(infos)) or sorted(inputs)
            raise Status(grpc.StatusCode.INVALID_ARGUMENT,
                         f"input tensor alias not found in signature: {','.join(wrong)}. Inputs expected to be in "
                         f"the set {{{','.join(sorted(infos))}}}.")
        try:
            tensors = {k: tf.constant(np.asarray(v, tf.dtypes.as_dtype(infos[k].dtype).as_numpy_dtype))
                       for k, v in inputs.items()}
            result = self.loaded.signatures[signature](**tensors)
        except (ValueError, TypeError, tf.errors.InvalidArgumentError) as e:
            raise Status(grpc.StatusCode.INVALID_ARGUMENT, str(e).splitlines()[0]) from None
        return {k: result[k].numpy() for k in self.signature_defs[signature].outputs}

    def metadata(self):
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for key, value in self.signature_defs.items():
            signatures.signature_def[key].CopyFrom(value)
        return signatures


def find(registry, name, version):
    model = registry.get(name)
    if model is None or (version is not None and version != model.version):
        wanted = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
        raise Status(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {wanted}")
    return model


class RestHandler(http.server.BaseHTTPRequestHandler):
    """TF Serving's REST API: `:predict` (columnar; row "instances" is not needed here) and `/metadata`.

    Two extra model names for transport failures: "slow" answers only after the client gave up, "html" answers
    502 with an HTML page, as a proxy in front of the server would.
    """

    PATH = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+))?(:predict|/metadata)")

    def log_message(self, *args):
        """Keep the test output quiet (BaseHTTPRequestHandler logs every request to stderr)."""

    def do_GET(self):  # noqa: N802
        self.handle_request("GET")

    def do_POST(self):  # noqa: N802
        self.handle_request("POST")

    def handle_request(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append({"method": method, "path": self.path, "body": body,
                                     "content_type": self.headers.get("Content-Type")})
        if self.path.startswith("/v1/models/slow"):
            self.server.release.wait(10)
        if self.path.startswith("/v1/models/html"):
            return self.reply(502, b"<html><body>Bad Gateway</body></html>", "text/html")
        try:
            status, payload = 200, self.dispatch(method, body)
        except Status as e:
            status, payload = HTTP_STATUS[e.code], {"error": e.message}
        self.reply(status, json.dumps(payload).encode())

    def reply(self, status, data, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def dispatch(self, method, body):
        match = self.PATH.fullmatch(self.path)
        if not match or (match.group(3) == ":predict") != (method == "POST"):
            raise Status(grpc.StatusCode.INVALID_ARGUMENT, f"Malformed request: {method} {self.path}")
        name, version, action = match.group(1), match.group(2), match.group(3)
        model = find(self.server.registry, name, None if version is None else int(version))
        if action == "/metadata":
            return {"model_spec": {"name": name, "signature_name": "", "version": str(model.version)},
                    "metadata": {"signature_def": json_format.MessageToDict(model.metadata(),
                                                                            preserving_proto_field_name=True)}}
        try:
            doc = json.loads(body)
        except ValueError as e:
            raise Status(grpc.StatusCode.INVALID_ARGUMENT, f"JSON Parse error: {e}") from None
        if not isinstance(doc, dict):
            raise Status(grpc.StatusCode.INVALID_ARGUMENT, "JSON Value: Is not object")
        signature_name = doc.get("signature_name", "")
        if not isinstance(signature_name, str):
            raise Status(grpc.StatusCode.INVALID_ARGUMENT, "'signature_name' key must be a string value.")
        signature = model.signature(signature_name, rest=True)
        names = sorted(model.signature_defs[signature].inputs)
        if "inputs" not in doc:
            raise Status(grpc.StatusCode.INVALID_ARGUMENT, "Missing 'inputs' or 'instances' key")
        value = doc["inputs"]
        if isinstance(value, dict):
            inputs = {}
            for n in names:  # like FillTensorMapFromInputsMap: every signature input must be there
                if n not in value:
                    raise Status(grpc.StatusCode.INVALID_ARGUMENT, f"Missing named input: {n} in 'inputs' object.")
                inputs[n] = value[n]
        elif len(names) > 1:
            raise Status(grpc.StatusCode.INVALID_ARGUMENT, "inputs is a plain value/list, but expecting an object "
                         "as multiple input tensors required as per tensorinfo_map")
        else:
            inputs = {names[0]: value}
        outputs = {k: v.tolist() for k, v in model.run(signature, inputs).items()}
        return {"outputs": outputs if len(outputs) > 1 else next(iter(outputs.values()))}


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """TF Serving's gRPC Predict and GetModelMetadata; outputs as float_val, as the model server writes them."""

    def __init__(self, registry):
        self.registry, self.requests = registry, []

    def Predict(self, request, context):  # noqa: N802
        self.requests.append(request)
        spec = request.model_spec
        try:
            model = find(self.registry, spec.name, spec.version.value if spec.HasField("version") else None)
            signature = model.signature(spec.signature_name)
            outputs = model.run(signature, {k: tf.make_ndarray(v) for k, v in request.inputs.items()})
        except Status as e:
            context.abort(e.code, e.message)
        response = predict_pb2.PredictResponse()
        response.model_spec.name, response.model_spec.signature_name = spec.name, signature
        response.model_spec.version.value = model.version
        for name, value in outputs.items():
            proto = response.outputs[name]
            proto.CopyFrom(tf.make_tensor_proto(value))
            proto.ClearField("tensor_content")
            proto.float_val.extend(value.ravel().tolist())
        return response

    def GetModelMetadata(self, request, context):  # noqa: N802
        spec = request.model_spec
        try:
            model = find(self.registry, spec.name, spec.version.value if spec.HasField("version") else None)
            if list(request.metadata_field) != ["signature_def"]:
                raise Status(grpc.StatusCode.INVALID_ARGUMENT, "Metadata field signature_def is required")
        except Status as e:
            context.abort(e.code, e.message)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = spec.name
        response.model_spec.version.value = model.version
        response.metadata["signature_def"].Pack(model.metadata())
        return response


# ---- fixtures ----

@pytest.fixture(scope="module")
def leads_export(tmp_path_factory):
    """A tiny untrained multi-lead ECG model (configs/ecg_leads.json at width 2, 256 Hz), exported."""
    keras.utils.set_random_seed(3)
    model = CASSModel(load_config(REPO / "configs/ecg_leads.json", LEADS_TINY))
    return export(model, tmp_path_factory.mktemp("leads") / "ecg", version=1)


@pytest.fixture(scope="module")
def leads_separator(leads_export):
    return Separator(leads_export)


@pytest.fixture(scope="module")
def cancelling_export(tmp_path_factory):
    """The tiny multi-lead model with model.cancellation "maternal_template", exported."""
    keras.utils.set_random_seed(3)
    config = load_config(REPO / "configs/ecg_leads.json", LEADS_TINY + ["model.cancellation=maternal_template"])
    return export(CASSModel(config), tmp_path_factory.mktemp("cancelling") / "ecg", version=1)


@pytest.fixture(scope="module")
def registry(tiny_export, leads_export, cancelling_export):
    return {MODEL: ServedModel(MODEL, 1, str(tiny_export)),
            "heart_only": ServedModel("heart_only", 1, str(tiny_export), outputs=("heart",)),
            LEADS: ServedModel(LEADS, 1, str(leads_export)),
            CANCELLING: ServedModel(CANCELLING, 1, str(cancelling_export))}


@pytest.fixture(scope="module")
def rest_server(registry):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RestHandler)
    server.registry, server.requests, server.release = registry, [], threading.Event()
    server.handle_error = lambda request, address: None  # "slow" writes to a socket the client already closed
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture
def rest(rest_server):
    rest_server.requests.clear()
    return rest_server, f"http://127.0.0.1:{rest_server.server_address[1]}"


@pytest.fixture(scope="module")
def grpc_server(registry):
    servicer = PredictionServicer(registry)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2),
                         options=[("grpc.max_send_message_length", 2**31 - 1),
                                  ("grpc.max_receive_message_length", 2**31 - 1)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    assert port
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(grace=None).wait(10)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """urllib honours *_proxy from the environment; these tests talk to 127.0.0.1 directly."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


# ---- REST ----

def test_rest_request_is_tf_serving_columnar_json(rest):
    server, url = rest
    x = signal(640)
    RestClient(url, model=MODEL).separate(x)
    [request] = server.requests
    assert request["method"] == "POST" and request["path"] == f"/v1/models/{MODEL}:predict"
    assert request["content_type"] == "application/json"
    body = json.loads(request["body"])
    assert set(body) == {"signature_name", "inputs"} and body["signature_name"] == "serving_default"
    assert set(body["inputs"]) == {"waveform"}
    sent = np.asarray(body["inputs"]["waveform"], np.float32)
    assert sent.shape == (1, 640)
    np.testing.assert_array_equal(sent, x[np.newaxis])  # 9 significant digits read back every float32 exactly


def test_rest_equals_separate(rest, tiny_separator):
    server, url = rest
    client = RestClient(url, model=MODEL, sample_rate=RATE, components=NAMES)
    x = signal(640)
    assert_same(client.separate(x), separate(x, tiny_separator))
    stereo = np.stack([signal(640, seed=3), signal(640, seed=4)])
    mixtures = [signal(640, seed=1), signal(512, seed=2), stereo]
    results = client.separate(mixtures)
    assert isinstance(results, list) and len(results) == 3
    for got, want in zip(results, separate(mixtures, tiny_separator)):
        assert_same(got, want)
    assert results[2]["heart"].shape == (2, 640)  # stereo in, stereo out: each channel separated on its own
    assert_same({n: v[1] for n, v in results[2].items()}, separate(stereo[1], tiny_separator))
    assert client.separate(stereo, mono=True)["heart"].shape == (640,)
    # the 640-sample signal and both stereo channels share one request, the 512-sample one has its own
    shapes = [np.asarray(json.loads(r["body"])["inputs"]["waveform"]).shape for r in server.requests[1:3]]
    assert shapes == [(3, 640), (1, 512)]


def test_rest_never_returns_non_finite_outputs(rest):
    """As separate(): a finite input near float32's limit overflows the model's STFT; the client raises a ValueError
    naming the mixture instead of returning the NaN the server sent."""
    server, url = rest
    client = RestClient(url, model=MODEL, sample_rate=RATE)
    huge = np.float32(3e38) * np.sign(signal(640))
    with pytest.raises(ValueError, match=r"^mixture\[1\]: the '\w+' output is not finite for this input"):
        client.separate([signal(640), huge])


def test_rest_resamples_like_separate(rest, tiny_separator, tmp_path):
    server, url = rest
    client = RestClient(url, model=MODEL, sample_rate=read_asset(tiny_separator.source).sample_rate)
    x = signal(480, rate=48)
    got = client.separate(x, sample_rate=48)
    assert_same(got, separate(x, tiny_separator, sample_rate=48))
    assert got["heart"].shape == (480,)
    assert np.asarray(json.loads(server.requests[0]["body"])["inputs"]["waveform"]).shape == (1, 640)
    path = tmp_path / "mix.wav"
    sf.write(path, signal(960, seed=5, rate=96), 96, subtype="FLOAT")
    [from_file] = client.separate([str(path)])
    assert_same(from_file, separate(str(path), tiny_separator))


def test_rest_version_path(rest, tiny_separator):
    server, url = rest
    x = signal(300)
    assert_same(RestClient(url, model=MODEL, version=1).separate(x), separate(x, tiny_separator))
    assert server.requests[-1]["path"] == f"/v1/models/{MODEL}/versions/1:predict"
    with pytest.raises(ServingError) as caught:
        RestClient(url, model=MODEL, version=3).separate(x)
    assert caught.value.status == 404
    assert f"Servable not found for request: Specific({MODEL}, 3)" in str(caught.value)
    assert f"{url}/v1/models/{MODEL}/versions/3:predict" in str(caught.value)


def test_rest_server_errors_carry_message_and_url(rest):
    server, url = rest
    x = signal(300)
    with pytest.raises(ServingError) as caught:
        RestClient(url, model="other").separate(x)
    assert caught.value.status == 404 and caught.value.url == f"{url}/v1/models/other:predict"
    assert "Servable not found for request: Latest(other)" in str(caught.value)
    assert caught.value.detail == "Servable not found for request: Latest(other)"
    with pytest.raises(ServingError, match=r'HTTP 400: Serving signature name: "nope" not found'):
        RestClient(url, model=MODEL, signature="nope").separate(x)
    # malformed bodies, as TF Serving answers them (sent through the client's transport)
    client = RestClient(url, model=MODEL)
    for body, message in [(b'{"signature_name": "serving_default"}', "Missing 'inputs' or 'instances' key"),
                          (b'{"inputs": {"wave": [[0.5]]}}', "Missing named input: waveform in 'inputs' object."),
                          (b'{"inputs": {"waveform": [[0.5, 1.0], [0.5]]}}', ""),
                          (b"{not json", "JSON Parse error")]:
        with pytest.raises(ServingError) as caught:
            client._call("POST", client.predict_url, body)
        assert caught.value.status == 400 and message in caught.value.detail
        assert client.predict_url in str(caught.value)
    with pytest.raises(ServingError, match=r"HTTP 502: <html><body>Bad Gateway"):
        RestClient(url, model="html").separate(x)


def test_rest_timeout_and_refused_connection_name_the_url(rest):
    server, url = rest
    slow = RestClient(url, model="slow", timeout=0.3)
    with pytest.raises(ServingError, match=r"timed out after 0\.3 s") as caught:
        slow.separate(signal(100))
    assert caught.value.url == slow.predict_url and slow.predict_url in str(caught.value)
    port = free_port()
    refused = RestClient(f"http://127.0.0.1:{port}", model=MODEL, timeout=5)
    with pytest.raises(ServingError, match=r"cannot reach the model server at http://127\.0\.0\.1:\d+/v1/models"):
        refused.separate(signal(100))


def test_rest_metadata_and_single_unnamed_output(rest, tiny_separator):
    server, url = rest
    meta = RestClient(url, model=MODEL).metadata()
    assert server.requests[-1]["method"] == "GET" and server.requests[-1]["path"] == f"/v1/models/{MODEL}/metadata"
    signatures = meta["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "features"} <= set(signatures)  # and __saved_model_init_op, as TF Serving lists it
    assert set(signatures["serving_default"]["outputs"]) == set(NAMES)
    assert signatures["serving_default"]["inputs"]["waveform"]["dtype"] == "DT_FLOAT"
    # a one-output signature is answered {"outputs": [[...]]}: the name comes from the metadata (or components)
    x = signal(400)
    expected = {"heart": separate(x, tiny_separator)["heart"]}
    assert_same(RestClient(url, model="heart_only").separate(x), expected)
    assert [r["path"] for r in server.requests[-2:]] == ["/v1/models/heart_only:predict",
                                                         "/v1/models/heart_only/metadata"]
    server.requests.clear()
    assert_same(RestClient(url, model="heart_only", components=["heart"]).separate(x), expected)
    assert [r["path"] for r in server.requests] == ["/v1/models/heart_only:predict"]
    with pytest.raises(ServingError, match=r"one unnamed output, expected the components \['heart', 'respiratory'\]"):
        RestClient(url, model="heart_only", components=NAMES).separate(x)


def test_inputs_are_checked_before_any_request(rest):
    server, url = rest
    client = RestClient(url, model=MODEL)  # no sample_rate: the model's rate is unknown
    with pytest.raises(ValueError, match="does not know the model's sample rate"):
        client.separate(signal(100), sample_rate=48)
    with pytest.raises(ValueError, match="integer PCM"):
        client.separate([signal(100), np.zeros(100, np.int16)])
    with pytest.raises(ValueError, match="empty"):
        client.separate([])
    with pytest.raises(ValueError, match="non-finite"):
        client.separate(np.array([0.0, np.nan], np.float32))
    with pytest.raises(ValueError, match=r"^mixture\[0\]: values exceed float32's range"):  # same checks as separate()
        client.separate([np.full(10, 1e300)])
    assert server.requests == []
    with pytest.raises(ValueError, match="url"):
        RestClient("localhost:8501")
    with pytest.raises(ValueError, match="version"):
        RestClient(url, version=0)
    with pytest.raises(ValueError, match=r"^multilead must be True or False .*got 'yes'"):
        RestClient(url, multilead="yes")


# ---- multi-lead models: a (leads, samples) recording is one [1, leads, samples] row ----

def rest_shapes(requests):
    return [np.asarray(json.loads(r["body"])["inputs"]["waveform"], np.float32).shape for r in requests]


def test_rest_multilead_sends_each_recording_whole_and_equals_separate(rest, leads_separator):
    server, url = rest
    rate = read_asset(leads_separator.source).sample_rate
    client = RestClient(url, model=LEADS, sample_rate=rate, components=LEAD_NAMES, multilead=True)
    x = leads(4, 700, seed=1)
    got = client.separate(x)
    expected = separate(x, leads_separator)
    assert_same(got, expected)
    assert got["fetal"].shape == (4, 700)
    [request] = server.requests
    sent = np.asarray(json.loads(request["body"])["inputs"]["waveform"], np.float32)
    np.testing.assert_array_equal(sent, x[np.newaxis])  # [1, leads, samples], every float32 exact
    # the served model mixes the leads: lead 0 of the recording is not lead 0 separated alone
    alone = separate(x[0], leads_separator)["fetal"]
    assert alone.shape == (700,) and np.abs(expected["fetal"][0] - alone).max() > 1e-3 * np.abs(alone).max()
    assert_same(client.separate(x[0]), separate(x[0], leads_separator))
    assert rest_shapes(server.requests[1:]) == [(1, 1, 700)]  # a 1-D input is one lead

    server.requests.clear()  # recordings of equal (leads, samples) share a request, in order
    mixtures = [leads(4, 700, seed=2), leads(4, 500, seed=3), leads(4, 700, seed=4), leads(3, 700, seed=5),
                signal(700, seed=6)]
    results = client.separate(mixtures)
    for got, want in zip(results, separate(mixtures, leads_separator)):
        assert_same(got, want)
    assert [r["fetal"].shape for r in results] == [(4, 700), (4, 500), (4, 700), (3, 700), (700,)]
    assert rest_shapes(server.requests) == [(2, 4, 700), (1, 4, 500), (1, 3, 700), (1, 1, 700)]

    server.requests.clear()  # at 1000 Hz: resampled to the model's 256 Hz and back, every lead
    x1000 = leads(4, 3000, seed=7)
    got = client.separate(x1000, sample_rate=1000)
    assert_same(got, separate(x1000, leads_separator, sample_rate=1000))
    assert got["maternal"].shape == (4, 3000) and rest_shapes(server.requests) == [(1, 4, 768)]


def test_rest_cancelling_client_sends_residuals_and_templates_and_equals_separate(rest, cancelling_export):
    server, url = rest
    asset = read_asset(cancelling_export)
    assert asset.config.model.cancellation == "maternal_template"
    client = RestClient(url, model=CANCELLING, sample_rate=asset.sample_rate, components=LEAD_NAMES, multilead=True,
                        cancellation=asset.config.model.cancellation)
    beat = np.exp(-0.5 * ((np.arange(3000) % 200 - 100) / 4.0) ** 2)  # 77 BPM at 256 Hz, 11.7 s
    x = (np.array([[1.0], [-0.6], [0.4]]) * beat + 0.05 * leads(3, 3000, seed=8)).astype(np.float32)
    got = client.separate(x)
    assert_same(got, separate(x, Separator(cancelling_export)))
    [request] = server.requests
    sent = np.asarray(json.loads(request["body"])["inputs"]["waveform"], np.float32)
    np.testing.assert_allclose(sent[0], np.concatenate(cancel(x, asset.sample_rate)), atol=1e-6)
    with pytest.raises(ValueError, match="cancellation"):
        RestClient(url, model=CANCELLING, multilead=True, cancellation="maternal_template")  # no sample_rate
    with pytest.raises(ValueError, match="cancellation must be one of"):
        RestClient(url, model=CANCELLING, sample_rate=256, cancellation="template")


def test_multilead_client_of_a_one_lead_model_gets_the_servers_error(rest):
    server, url = rest
    with pytest.raises(ServingError) as caught:
        RestClient(url, model=MODEL, multilead=True).separate(np.stack([signal(300), signal(300, seed=1)]))
    assert caught.value.status == 400 and rest_shapes(server.requests) == [(1, 2, 300)]


def test_grpc_multilead_sends_leads_in_the_tensor_shape_and_counts_them_in_the_size(grpc_server, leads_separator):
    servicer, target = grpc_server
    rate = read_asset(leads_separator.source).sample_rate
    recordings = [leads(4, 700, seed=8), leads(4, 700, seed=9), leads(4, 700, seed=10), leads(2, 640, seed=11)]
    expected = separate(recordings, leads_separator)
    row_bytes = 4 * 4 * 700 * len(LEAD_NAMES)  # one 4-lead row: every lead's samples, for each component
    count = len(servicer.requests)
    with GrpcClient(target, model=LEADS, sample_rate=rate, components=LEAD_NAMES, multilead=True,
                    max_message_bytes=2 * row_bytes + 4096) as client:  # two 4-lead rows per message
        for got, want in zip(client.separate(recordings), expected):
            assert_same(got, want)
        sent = servicer.requests[count:]
        assert [[d.size for d in r.inputs["waveform"].tensor_shape.dim] for r in sent] == \
            [[2, 4, 700], [1, 4, 700], [1, 2, 640]]
        np.testing.assert_array_equal(tf.make_ndarray(sent[1].inputs["waveform"]), recordings[2][np.newaxis])
        x1000 = leads(4, 3000, seed=12)
        assert_same(client.separate(x1000, sample_rate=1000), separate(x1000, leads_separator, sample_rate=1000))
    # a message that holds 700 samples of one lead does not hold 4 leads of them: refused before any request
    count = len(servicer.requests)
    with GrpcClient(target, model=LEADS, components=LEAD_NAMES, multilead=True,
                    max_message_bytes=row_bytes // 4 + 4096) as client:
        with pytest.raises(ValueError, match=r"^a signal of 4 leads x 700 samples needs about 22400 bytes"):
            client.separate([signal(700), recordings[0]])
    assert len(servicer.requests) == count


# ---- gRPC ----

def test_grpc_equals_separate(grpc_server, tiny_separator):
    servicer, target = grpc_server
    with GrpcClient(target, model=MODEL, sample_rate=RATE) as client:
        x = signal(640)
        assert_same(client.separate(x), separate(x, tiny_separator))
        request = servicer.requests[-1]
        assert request.model_spec.name == MODEL and request.model_spec.signature_name == "serving_default"
        assert not request.model_spec.HasField("version")
        np.testing.assert_array_equal(tf.make_ndarray(request.inputs["waveform"]), x[np.newaxis])
        mixtures = [signal(640, seed=1), signal(512, seed=2), signal(640, seed=3)]
        count = len(servicer.requests)
        for got, want in zip(client.separate(mixtures), separate(mixtures, tiny_separator)):
            assert_same(got, want)
        assert [tuple(tf.make_ndarray(r.inputs["waveform"]).shape) for r in servicer.requests[count:]] == \
            [(2, 640), (1, 512)]
        x48 = signal(480, rate=48)
        got = client.separate(x48, sample_rate=48)
        assert_same(got, separate(x48, tiny_separator, sample_rate=48))
        assert got["respiratory"].shape == (480,)


def test_grpc_versions_components_and_metadata(grpc_server, rest, tiny_separator):
    servicer, target = grpc_server
    x = signal(300)
    with GrpcClient(target, model=MODEL, version=1, components=["respiratory", "heart"]) as client:
        got = client.separate(x)
        assert list(got) == ["respiratory", "heart"]
        assert servicer.requests[-1].model_spec.version.value == 1
        assert_same({n: got[n] for n in NAMES}, separate(x, tiny_separator))
        assert client.metadata() == RestClient(rest[1], model=MODEL, version=1).metadata()
    with GrpcClient(target, model=MODEL, components=["heart", "pulse"]) as client:
        with pytest.raises(ServingError, match=r"outputs \['heart', 'respiratory'\], expected the components"):
            client.separate(x)


def test_grpc_errors_carry_status_and_target(grpc_server):
    servicer, target = grpc_server
    x = signal(200)
    with GrpcClient(target, model="other") as client:
        with pytest.raises(ServingError) as caught:
            client.separate(x)
    assert caught.value.status == "NOT_FOUND" and caught.value.url == target
    assert "NOT_FOUND: Servable not found for request: Latest(other)" in str(caught.value)
    assert target in str(caught.value)
    with GrpcClient(target, model=MODEL, version=4) as client:
        with pytest.raises(ServingError, match=r"NOT_FOUND: Servable not found for request: Specific\(tiny, 4\)"):
            client.separate(x)
    with GrpcClient(target, model=MODEL, signature="nope") as client:
        with pytest.raises(ServingError, match='FAILED_PRECONDITION: Serving signature key "nope" not found'):
            client.separate(x)
    dead = f"127.0.0.1:{free_port()}"
    with GrpcClient(dead, model=MODEL, timeout=5) as client:
        with pytest.raises(ServingError, match=re.escape(dead)) as caught:
            client.separate(x)
    assert caught.value.status in ("UNAVAILABLE", "DEADLINE_EXCEEDED")


def test_grpc_without_serving_api_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_serving", None)
    monkeypatch.setitem(sys.modules, "tensorflow_serving.apis", None)
    with pytest.raises(ImportError, match=r"pip install cass_tf\[serving\]"):
        GrpcClient("127.0.0.1:1")
