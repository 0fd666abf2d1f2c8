// Time-synced lyrics from word-timed transcript segments: LRC, enhanced LRC, ASS karaoke,
// WebVTT, SRT and JSON. Pure functions, shared by the server and the browser.
import { assTime, lrcTime } from "./timecode";
import { toSrt, toVtt } from "./subtitles";

export interface LyricWord { word: string; start: number; end: number }
export interface LyricLine { start: number; end: number; text: string; words: LyricWord[] }

interface SegmentLike { start: number; end: number; text: string; words?: { word: string; start: number; end: number }[] }

/** Where a sung line ends inside a segment: a pause this long after any word (seconds)… */
const LINE_PAUSE_S = 1.0;
/** …or this long after a word that ends a clause (, . ; : ! ?). */
const CLAUSE_PAUSE_S = 0.5;

/**
 * Lyric lines from transcript segments, timed by their words where they exist. A segment is one
 * line unless its words pause inside it (beam search tends to run two sung lines into one
 * segment): it is split there, dropping a comma left at the break and capitalising what follows.
 */
export function linesFromSegments(segments: SegmentLike[]): LyricLine[] {
  const lines: LyricLine[] = [];
  for (const s of segments) {
    const text = s.text.trim();
    if (!text) continue;
    const words = (s.words ?? []).filter((w) => w.word.trim()).map((w) => ({ word: w.word.trim(), start: w.start, end: Math.max(w.start, w.end) }));
    const breaks: number[] = []; // indices of the words that start a new line
    for (let i = 1; i < words.length; i++) {
      const gap = words[i]!.start - words[i - 1]!.end;
      if (gap >= LINE_PAUSE_S || (gap >= CLAUSE_PAUSE_S && /[,.;:!?]$/.test(words[i - 1]!.word))) breaks.push(i);
    }
    if (!breaks.length) {
      const start = words[0]?.start ?? s.start;
      const end = words.at(-1)?.end ?? s.end;
      lines.push({ start, end: Math.max(end, start), text, words });
      continue;
    }
    const bounds = [0, ...breaks, words.length];
    for (let k = 0; k + 1 < bounds.length; k++) {
      const part = words.slice(bounds[k], bounds[k + 1]);
      if (k + 1 < bounds.length - 1) part[part.length - 1] = { ...part.at(-1)!, word: part.at(-1)!.word.replace(/[,;:]$/, "") };
      if (k > 0) part[0] = { ...part[0]!, word: part[0]!.word.charAt(0).toUpperCase() + part[0]!.word.slice(1) };
      lines.push({ start: part[0]!.start, end: part.at(-1)!.end, text: part.map((w) => w.word).join(" "), words: part });
    }
  }
  return lines;
}

export function toLrc(lines: LyricLine[]): string {
  return lines.map((l) => `[${lrcTime(l.start)}]${l.text}`).join("\n") + "\n";
}

/** Enhanced LRC (A2 extension): a line tag, then a <time> tag before every word. */
export function toEnhancedLrc(lines: LyricLine[]): string {
  return lines.map((l) => {
    if (!l.words.length) return `[${lrcTime(l.start)}]${l.text}`;
    return `[${lrcTime(l.start)}] ${l.words.map((w) => `<${lrcTime(w.start)}> ${w.word}`).join(" ")} <${lrcTime(l.end)}>`;
  }).join("\n") + "\n";
}

/** ASS subtitles with \k tags: each word's duration in centiseconds, gaps included. */
export function toAss(lines: LyricLine[], title = "Stemscribe karaoke"): string {
  const head = [
    "[Script Info]", `Title: ${title}`, "ScriptType: v4.00+", "PlayResX: 1280", "PlayResY: 720", "",
    "[V4+ Styles]",
    "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding",
    "Style: Default,Arial,48,&H0000FFFF,&H00FFFFFF,&H00000000,&H64000000,-1,0,0,0,100,100,0,0,1,2,1,2,40,40,60,1",
    "", "[Events]", "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
  ];
  const events = lines.map((l) => {
    let text: string;
    if (l.words.length) {
      let cursor = l.start;
      text = l.words.map((w) => {
        // Time before the word (a pause) is folded into its \k so the sweep stays in sync.
        const cs = Math.max(1, Math.round((w.end - cursor) * 100));
        cursor = w.end;
        return `{\\k${cs}}${w.word}`;
      }).join(" ");
    } else {
      text = `{\\k${Math.max(1, Math.round((l.end - l.start) * 100))}}${l.text}`;
    }
    return `Dialogue: 0,${assTime(l.start)},${assTime(l.end)},Default,,0,0,0,,${text}`;
  });
  return [...head, ...events].join("\n") + "\n";
}

export const lyricsVtt = (lines: LyricLine[]) => toVtt(lines);
export const lyricsSrt = (lines: LyricLine[]) => toSrt(lines);
export const lyricsJson = (lines: LyricLine[]) => JSON.stringify({ lines }, null, 1);

/** Every lyrics download: [result name, file body, content type]. */
export function allLyricFormats(lines: LyricLine[]): [string, string, string][] {
  return [
    ["lyrics.lrc", toLrc(lines), "text/plain; charset=utf-8"],
    ["lyrics.enhanced.lrc", toEnhancedLrc(lines), "text/plain; charset=utf-8"],
    ["lyrics.ass", toAss(lines), "text/x-ssa; charset=utf-8"],
    ["lyrics.vtt", lyricsVtt(lines), "text/vtt; charset=utf-8"],
    ["lyrics.srt", lyricsSrt(lines), "application/x-subrip; charset=utf-8"],
    ["lyrics.json", lyricsJson(lines), "application/json"],
  ];
}
