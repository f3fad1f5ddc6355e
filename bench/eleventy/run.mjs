// eleventy-img with its defaults (formats and widths aside), as an Eleventy site runs it:
// every image requested at once, the library's own queue doing the scheduling.
//
//   node run.mjs build OUT_DIR WIDTHS PHOTO...      -> JSON: {"seconds", "outputs": [...]}
//   node run.mjs reference OUT_DIR WIDTHS PHOTO...  -> sharp-resized lossless PNGs
//
// Run from a scratch directory where `npm install` put @11ty/eleventy-img (and with it sharp):
// bench/bench_quality.py does that; node_modules never goes into the repository.
import path from "node:path";
import Image from "@11ty/eleventy-img";
import sharp from "sharp";

const [mode, outDir, widthList, ...photos] = process.argv.slice(2);
const widths = widthList.split(",").map(Number);

if (mode === "build") {
  const started = process.hrtime.bigint();
  const stats = await Promise.all(photos.map((photo) => Image(photo, {
    widths,
    formats: ["avif", "webp", "jpeg"],
    outputDir: outDir,
    useCache: false,
  })));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  // Which file is which photo at which requested width (file names are content hashes).
  const outputs = stats.flatMap((byFormat, i) => Object.values(byFormat).flat().map((s) => ({
    photo: photos[i], format: s.format, width: s.width, bytes: s.size, path: s.outputPath,
  })));
  console.log(JSON.stringify({ seconds, outputs }));
} else if (mode === "reference") {
  // What eleventy-img's outputs are judged against: the same resize (sharp's default
  // lanczos3, autorotated as eleventy-img does), kept lossless.
  for (const photo of photos) {
    const meta = await sharp(photo).metadata();
    for (const width of widths) {
      const w = Math.min(width, meta.width);
      const name = `${path.parse(photo).name}-${w}.png`;
      await sharp(photo).rotate().resize({ width: w }).png().toFile(path.join(outDir, name));
    }
  }
} else {
  console.error("usage: node run.mjs build|reference OUT_DIR WIDTHS PHOTO...");
  process.exit(2);
}
