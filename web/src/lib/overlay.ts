// How the overlays are drawn, read from the URL like the rest of the view's state:
//   colour=outcome        colour each object by its outcome at the view's (c, t) instead of by class
//   colour=error          colour each box / polygon / mask error by its TIDE error type (objects carry `error`)
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
// TIDE's six error types (slicewise.metrics.tide), each with a colour and a line of legend
export const ERROR_COLOURS: Record<string, string> = {
  classification: "#a855f7", localization: "#f79009", both: "#ec4899", duplicate: "#06b6d4",
  background: "#f04438", missed: "#eab308",
};
export const ERROR_TEXT: Record<string, string> = {
  classification: "right place, wrong class", localization: "right class, box off (IoU between 0.1 and t)",
  both: "wrong class and box off", duplicate: "a second prediction of a label already matched",
  background: "a prediction on nothing (IoU < 0.1 with every label)", missed: "a label no prediction found",
};

export interface OverlayStyle { byOutcome: boolean; byError: boolean; errorsOnly: boolean; hidden: Set<string> }

export function overlayStyle(params: Record<string, string>): OverlayStyle {
  let hidden: string[] = [];
  try {
    const v = JSON.parse(params.hide ?? "[]");
    if (Array.isArray(v)) hidden = v.map(String);
  } catch { /* a hand-edited URL: draw every class */ }
  return { byOutcome: params.colour === "outcome", byError: params.colour === "error", errorsOnly: params.errors === "1",
    hidden: new Set(hidden) };
}

/** The colour an object is drawn in: its class's, its outcome's, or its error type's (a TP green, the rest
 * grey when it has none). */
export function objectColour(feature: string, outcome: string | null | undefined, s: Pick<OverlayStyle, "byOutcome" | "byError">,
  error?: string | null): string {
  if (s.byError) return ERROR_COLOURS[error ?? ""] ?? (outcome === "TP" ? OUTCOME_COLOURS.TP : "#98a2b3");
  if (!s.byOutcome) return colour(feature);
  return OUTCOME_COLOURS[outcome ?? ""] ?? "#98a2b3";
}

/** Whether an object is drawn under the style (its class shown; with errorsOnly, an error). */
export function drawn(feature: string, outcome: string | null | undefined, s: OverlayStyle, error?: string | null): boolean {
  if (s.hidden.has(feature)) return false;
  return !s.errorsOnly || ERRORS.has(outcome ?? "") || !!error;
}
