"""The dicomweb-client package as an independent client against the DICOMweb routes."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pydicom
from aiohttp.test_utils import TestServer
from dicomweb_client.api import DICOMwebClient
from PIL import Image

from tests.conftest import Api


def _client(server: TestServer, token: str) -> DICOMwebClient:
    return DICOMwebClient(url=str(server.make_url("/dicomweb")),
                          headers={"Authorization": f"Bearer {token}"})


async def test_dicomweb_client_round_trip(api: Api, server: TestServer,
                                          ct_files: list[bytes]) -> None:
    township = await api.login("township")
    client = _client(server, township.token or "")
    datasets = [pydicom.dcmread(io.BytesIO(f)) for f in ct_files]
    study = datasets[0].StudyInstanceUID
    series = datasets[0].SeriesInstanceUID

    def scenario() -> None:
        result = client.store_instances(datasets)
        assert len(result.ReferencedSOPSequence) == 4
        studies = client.search_for_studies(search_filters={"PatientID": "T-1"})
        assert [s["0020000D"]["Value"][0] for s in studies] == [study]
        assert len(client.search_for_series(study)) == 1
        assert len(client.search_for_series(search_filters={"Modality": "CT",
                                                            "PatientID": "T-1"})) == 1
        insts = client.search_for_instances(study, series, fields=["Rows"])
        assert len(insts) == 4 and insts[0]["00280010"]["Value"] == [128]
        assert len(client.search_for_instances(search_filters={"StudyInstanceUID": study})) == 4
        sop = datasets[1].SOPInstanceUID
        inst = client.retrieve_instance(study, series, sop)
        assert inst.SOPInstanceUID == sop
        assert np.array_equal(inst.pixel_array, datasets[1].pixel_array)
        got = client.retrieve_series(study, series)
        assert sorted(d.SOPInstanceUID for d in got) == sorted(d.SOPInstanceUID for d in datasets)
        assert len(client.retrieve_study(study)) == 4
        meta = client.retrieve_series_metadata(study, series)
        assert len(meta) == 4
        pydicom.Dataset.from_json(meta[0])
        assert client.retrieve_instance_metadata(study, series, sop)["00080018"]["Value"] == [sop]
        frames = client.retrieve_instance_frames(study, series, sop, frame_numbers=[1])
        expected = datasets[1].pixel_array.astype("<u2").tobytes()
        assert frames[0] == expected
        frames = client.retrieve_instance_frames(
            study, series, sop, frame_numbers=[1],
            media_types=(("application/octet-stream", "1.2.840.10008.1.2.1"),))
        assert frames[0] == expected
        png = client.retrieve_instance_rendered(study, series, sop, media_types=("image/png",))
        assert Image.open(io.BytesIO(png)).size == (128, 128)
        jpg = client.retrieve_instance_frames_rendered(study, series, sop, frame_numbers=[1])
        assert Image.open(io.BytesIO(jpg)).format == "JPEG"

    await asyncio.to_thread(scenario)
