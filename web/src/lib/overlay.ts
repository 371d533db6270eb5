// How the overlays are drawn, read from the URL like the rest of the view's state:
//   colour=outcome        colour each object by its outcome at the view's (c, t) instead of by class
//   errors=1              draw only the errors (FP, FN and confused objects); TP and dropped are hidden
//   hide=["cat","dog"]    classes (feature names) not drawn (a JSON list: names may hold commas)
// Labels are solid outlines, predictions dashed, in both colourings.
import { colour } from "./api";

export const OUTCOME_COLOURS: Record<string, string> = {
  TP: "#12b76a", FP: "#f04438", FN: "#f79009", confusion: "#a855f7", dropped: "#98a2b3",
};
export const OUTCOME_TEXT: Record<string, string> = {
  TP: "true positive: matched, same class", FP: "false positive: a prediction with no match",
  FN: "false negative: a label with no match", confusion: "matched with another class (an FP and an FN)",
};
export const ERRORS = new Set(["FP", "FN", "confusion"]);

export interface OverlayStyle { byOutcome: boolean; errorsOnly: boolean; hidden: Set<string> }

export function overlayStyle(params: Record<string, string>): OverlayStyle {
  let hidden: string[] = [];
  try {
    const v = JSON.parse(params.hide ?? "[]");
    if (Array.isArray(v)) hidden = v.map(String);
  } catch { /* a hand-edited URL: draw every class */ }
  return { byOutcome: params.colour === "outcome", errorsOnly: params.errors === "1", hidden: new Set(hidden) };
}

/** The colour an object is drawn in: its class's, or its outcome's (grey when it has none). */
export function objectColour(feature: string, outcome: string | null | undefined, byOutcome: boolean): string {
  if (!byOutcome) return colour(feature);
  return OUTCOME_COLOURS[outcome ?? ""] ?? "#98a2b3";
}

/** Whether an object is drawn under the style (its class shown; with errorsOnly, an error). */
export function drawn(feature: string, outcome: string | null | undefined, s: OverlayStyle): boolean {
  if (s.hidden.has(feature)) return false;
  return !s.errorsOnly || ERRORS.has(outcome ?? "");
}
