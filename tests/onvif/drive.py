"""A third-party ONVIF client (onvif-zeep, from PyPI) driving a camera, for eyeward's tests.

    drive.py HOST PORT USER PASSWORD

Finds the media profile and the PTZ service through the device service, then moves the
camera every way ONVIF offers and reads its status after each, printing one JSON object:
{"profile", "stream_uri", "start", "moving", "stopped", "absolute", "relative", "home",
"preset", "presets"} (positions as [x, y] in the generic space, "moving" with the move
status). Exits non-zero with the error when the camera refuses or answers wrongly.
"""

import json
import sys
import time

from onvif import ONVIFCamera


def main():
    host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    cam = ONVIFCamera(host, port, user, password)
    media = cam.create_media_service()
    profile = media.GetProfiles()[0].token
    uri = media.GetStreamUri(
        {"ProfileToken": profile, "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}}
    ).Uri
    ptz = cam.create_ptz_service()

    def where():
        s = ptz.GetStatus({"ProfileToken": profile})
        return [round(s.Position.PanTilt.x, 3), round(s.Position.PanTilt.y, 3)], s.MoveStatus.PanTilt

    out = {"profile": profile, "stream_uri": uri}
    out["start"], _ = where()
    ptz.ContinuousMove({"ProfileToken": profile, "Velocity": {"PanTilt": {"x": 1.0, "y": 0.0}}})
    time.sleep(0.5)
    out["moving"] = where()
    ptz.Stop({"ProfileToken": profile})
    out["stopped"] = where()
    ptz.AbsoluteMove({"ProfileToken": profile, "Position": {"PanTilt": {"x": -0.5, "y": 0.5}}})
    time.sleep(3)
    out["absolute"], _ = where()
    ptz.RelativeMove({"ProfileToken": profile, "Translation": {"PanTilt": {"x": 0.25, "y": 0.0}}})
    time.sleep(2)
    out["relative"], _ = where()
    token = ptz.SetPreset({"ProfileToken": profile, "PresetName": "door"})
    ptz.GotoHomePosition({"ProfileToken": profile})
    time.sleep(3)
    out["home"], _ = where()
    ptz.GotoPreset({"ProfileToken": profile, "PresetToken": token})
    time.sleep(3)
    out["preset"], _ = where()
    out["presets"] = [p.Name for p in ptz.GetPresets({"ProfileToken": profile})]
    print(json.dumps(out), flush=True)


main()
