// client.js - drives the unmodified npm package `remove.bg` (which always calls
// https://api.remove.bg/v1.0/removebg) the way an integration does. run.py starts
// it inside a network namespace where api.remove.bg resolves to bgremover and
// Node trusts the test CA through NODE_EXTRA_CA_CERTS.
//
// Usage: node client.js KEY PHOTO_PATH PHOTO_URL OUT_DIR
// Prints one JSON line per call: {"call", "ok", "result" | "error"}; run.py
// checks the images written to OUT_DIR.
"use strict";
const fs = require("fs");
const path = require("path");
const rbg = require("remove.bg");

const [key, photoPath, photoUrl, outDir] = process.argv.slice(2);

const calls = [
    ["file_crop_scale", () => rbg.removeBackgroundFromImageFile({
        apiKey: key, path: photoPath, size: "regular", type: "person", crop: true,
        scale: "50%", outputFile: path.join(outDir, "file_crop_scale.png"),
    })],
    ["file_plain", () => rbg.removeBackgroundFromImageFile({
        apiKey: key, path: photoPath, outputFile: path.join(outDir, "file_plain.png"),
    })],
    ["url_bg_color", () => rbg.removeBackgroundFromImageUrl({
        apiKey: key, url: photoUrl, size: "medium", bg_color: "81d4fa",
        outputFile: path.join(outDir, "url_bg_color.jpg"),
    })],
    ["base64_channels_crop", () => rbg.removeBackgroundFromImageBase64({
        apiKey: key, base64img: fs.readFileSync(photoPath).toString("base64"),
        channels: "alpha", crop: true, position: "center",
        outputFile: path.join(outDir, "base64_channels_crop.jpg"),
    })],
    ["base64_scale_position", () => rbg.removeBackgroundFromImageBase64({
        apiKey: key, base64img: fs.readFileSync(photoPath).toString("base64"),
        scale: "80%", position: "0% 100%", bg_color: "green",
        outputFile: path.join(outDir, "base64_scale_position.jpg"),
    })],
    ["bad_key", () => rbg.removeBackgroundFromImageFile({
        apiKey: "bgr_live_wrong", path: photoPath,
        outputFile: path.join(outDir, "never.png"),
    })],
];

(async () => {
    for (const [name, fn] of calls) {
        try {
            const r = await fn();
            delete r.base64img; // the file is checked instead
            console.log(JSON.stringify({call: name, ok: true, result: r}));
        } catch (e) {
            console.log(JSON.stringify({call: name, ok: false, error: e}));
        }
    }
})();
