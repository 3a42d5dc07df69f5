// peer.mjs - times the peer, @imgly/background-removal-node, for bench/compare.
//
//   node peer.mjs loop RUNS PHOTO...   one process: a warm-up on the first
//                                      photo, then RUNS passes over all photos
//   node peer.mjs once PHOTO           one photo, for whole-process timing
//
// Prints "image PATH MS" per timed call and "rss KIB" (peak resident set,
// from the kernel) at the end. Output is PNG, the peer's default, as ours.
import { removeBackground } from '@imgly/background-removal-node';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [mode, ...rest] = process.argv.slice(2);
const config = { model: 'medium', output: { format: 'image/png' } };

async function one(photo) {
    const t0 = process.hrtime.bigint();
    const blob = await removeBackground(pathToFileURL(path.resolve(photo)).href, config);
    await blob.arrayBuffer(); // the encoded result, as a client would take it
    return Number(process.hrtime.bigint() - t0) / 1e6;
}

if (mode === 'loop') {
    const runs = Number(rest[0]);
    const photos = rest.slice(1);
    await one(photos[0]); // warm-up: first session creation, JIT
    for (let r = 0; r < runs; r++)
        for (const p of photos)
            console.log(`image ${p} ${(await one(p)).toFixed(1)}`);
} else if (mode === 'once') {
    console.log(`image ${rest[0]} ${(await one(rest[0])).toFixed(1)}`);
} else {
    console.error('usage: node peer.mjs loop RUNS PHOTO... | once PHOTO');
    process.exit(2);
}
console.log(`rss ${process.resourceUsage().maxRSS}`);
