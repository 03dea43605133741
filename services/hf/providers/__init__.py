"""Provider x task adapters for the non-chat tasks, and the table that picks one.

Layout: `base/` holds the template (`TaskAdapter`) and the values it trades (calls, replies, steps, errors,
media helpers); `adapters/` one module per provider. Adding a provider or a task: one small `TaskAdapter`
subclass in the provider's module under `adapters/`, one row below (rows and keys alphabetical), socket-free
tests in `tests/unit/`, the fake router speaking it, and a contract case.
"""

from __future__ import annotations

from typing import cast

from .adapters.deepinfra import (
    DeepInfraFeatureExtraction,
    DeepInfraSpeechRecognition,
    DeepInfraTextToImage,
    DeepInfraTextToSpeech,
)
from .adapters.fal_ai import (
    FalImageToImage,
    FalImageToVideo,
    FalSpeechRecognition,
    FalTextToImage,
    FalTextToSpeech,
    FalTextToVideo,
)
from .adapters.hf_inference import (
    HfInferenceFeatureExtraction,
    HfInferenceImageToImage,
    HfInferenceSpeechRecognition,
    HfInferenceTextToImage,
    HfInferenceTextToSpeech,
)
from .adapters.novita import NovitaImageToVideo, NovitaTextToVideo
from .adapters.nscale import NscaleTextToImage
from .adapters.replicate import (
    ReplicateImageToImage,
    ReplicateSpeechRecognition,
    ReplicateTextToImage,
    ReplicateTextToSpeech,
    ReplicateTextToVideo,
)
from .adapters.scaleway import ScalewayFeatureExtraction
from .adapters.together import (
    TogetherFeatureExtraction,
    TogetherImageToImage,
    TogetherImageToVideo,
    TogetherSpeechRecognition,
    TogetherTextToImage,
    TogetherTextToSpeech,
    TogetherTextToVideo,
)
from .adapters.wavespeed import WavespeedImageToImage, WavespeedImageToVideo, WavespeedTextToImage, WavespeedTextToVideo
from .adapters.zai_org import ZaiTextToImage
from .base.adapter import TaskAdapter
from .base.errors import NoAdapter, ProviderError, ProviderJobFailed, ProviderReplyInvalid, UnsupportedInput
from .base.types import (
    FINAL_STEPS,
    PROVIDER_NAMES,
    TASKS,
    Download,
    HttpCall,
    HttpReply,
    JobStatus,
    Media,
    Pending,
    Provider,
    Purpose,
    Step,
    Task,
    TaskInput,
    Transcript,
    Vector,
    Vectors,
    dims_of,
    floats_of,
)

__all__ = [
    "FINAL_STEPS",
    "PROVIDERS",
    "PROVIDER_NAMES",
    "TASKS",
    "Download",
    "HttpCall",
    "HttpReply",
    "JobStatus",
    "Media",
    "NoAdapter",
    "Pending",
    "Provider",
    "ProviderError",
    "ProviderJobFailed",
    "ProviderReplyInvalid",
    "Purpose",
    "Step",
    "Task",
    "TaskAdapter",
    "TaskInput",
    "Transcript",
    "UnsupportedInput",
    "Vector",
    "Vectors",
    "dims_of",
    "floats_of",
    "get_adapter",
    "mapping_tasks",
    "providers_for",
]

PROVIDERS: dict[Provider, dict[Task, TaskAdapter]] = {
    "deepinfra": {
        "automatic-speech-recognition": DeepInfraSpeechRecognition(),
        "feature-extraction": DeepInfraFeatureExtraction(),
        "text-to-image": DeepInfraTextToImage(),
        "text-to-speech": DeepInfraTextToSpeech(),
    },
    "fal-ai": {
        "automatic-speech-recognition": FalSpeechRecognition(),
        "image-to-image": FalImageToImage(),
        "image-to-video": FalImageToVideo(),
        "text-to-image": FalTextToImage(),
        "text-to-speech": FalTextToSpeech(),
        "text-to-video": FalTextToVideo(),
    },
    "hf-inference": {
        "automatic-speech-recognition": HfInferenceSpeechRecognition(),
        "feature-extraction": HfInferenceFeatureExtraction(),
        "image-to-image": HfInferenceImageToImage(),
        "text-to-image": HfInferenceTextToImage(),
        "text-to-speech": HfInferenceTextToSpeech(),
    },
    "novita": {
        "image-to-video": NovitaImageToVideo(),
        "text-to-video": NovitaTextToVideo(),
    },
    "nscale": {
        "text-to-image": NscaleTextToImage(),
    },
    "replicate": {
        "automatic-speech-recognition": ReplicateSpeechRecognition(),
        "image-to-image": ReplicateImageToImage(),
        "text-to-image": ReplicateTextToImage(),
        "text-to-speech": ReplicateTextToSpeech(),
        "text-to-video": ReplicateTextToVideo(),
    },
    "scaleway": {
        "feature-extraction": ScalewayFeatureExtraction(),
    },
    "together": {
        "automatic-speech-recognition": TogetherSpeechRecognition(),
        "feature-extraction": TogetherFeatureExtraction(),
        "image-to-image": TogetherImageToImage(),
        "image-to-video": TogetherImageToVideo(),
        "text-to-image": TogetherTextToImage(),
        "text-to-speech": TogetherTextToSpeech(),
        "text-to-video": TogetherTextToVideo(),
    },
    "wavespeed": {
        "image-to-image": WavespeedImageToImage(),
        "image-to-video": WavespeedImageToVideo(),
        "text-to-image": WavespeedTextToImage(),
        "text-to-video": WavespeedTextToVideo(),
    },
    "zai-org": {
        "text-to-image": ZaiTextToImage(),
    },
}


def providers_for(task: str) -> list[str]:
    """The providers with an adapter for `task`, alphabetical; empty for an unknown task."""
    return [provider for provider, adapters in PROVIDERS.items() if task in adapters]


def mapping_tasks(provider: str, task: str) -> frozenset[str]:
    """The Hub mapping tasks whose models `provider`'s adapter for `task` runs: the task, and any it also serves."""
    adapter = PROVIDERS.get(cast(Provider, provider), {}).get(cast(Task, task))
    return frozenset({task}) | (adapter.also_serves if adapter is not None else frozenset())


def get_adapter(provider: str, task: str) -> TaskAdapter:
    """The adapter for one provider and task; a miss names the providers that do serve the task."""
    if task not in TASKS:
        raise NoAdapter(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    adapter = PROVIDERS.get(cast(Provider, provider), {}).get(task)
    if adapter is None:
        available = ", ".join(providers_for(task))
        raise NoAdapter(f"no {task} adapter for provider {provider!r}; providers for {task}: {available}")
    return adapter
