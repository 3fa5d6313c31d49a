import { describe, expect, it } from "vitest";
import { filenameFromDisposition as fileNameOf, exportPath } from "./download";
import { recordErrorText, splitStyle, utcOffsetMinutes } from "./pages/record";

describe("the record page", () => {
  it("asks for the record in the reader's time zone", () => {
    expect(exportPath("abc", "html", undefined, -300)).toBe("/api/labs/abc/export?format=html&utcOffset=-300");
  });

  it("takes the file name from Content-Disposition", () => {
    expect(fileNameOf('attachment; filename="making-ten-record.html"', "x.html")).toBe("making-ten-record.html");
    expect(fileNameOf(null, "lab-record.html")).toBe("lab-record.html");
    expect(fileNameOf("inline", "lab-record.html")).toBe("lab-record.html");
  });

  it("says in words why the record could not be opened", () => {
    expect(recordErrorText(403, "x")).toMatch(/Only the lab's facilitator/);
    expect(recordErrorText(404, "x")).toMatch(/deleted/);
    expect(recordErrorText(401, "x")).toMatch(/sign in again/);
    expect(recordErrorText(0, "x")).toMatch(/Can't reach/);
    expect(recordErrorText(500, "the lab's board could not be read")).toBe("the lab's board could not be read");
  });

  it("gives the time zone as minutes east of UTC", () => {
    const date = { getTimezoneOffset: () => 300 } as Date;
    expect(utcOffsetMinutes(date)).toBe(-300);
    expect(utcOffsetMinutes({ getTimezoneOffset: () => -330 } as Date)).toBe(330);
    expect(Object.is(utcOffsetMinutes({ getTimezoneOffset: () => 0 } as Date), 0)).toBe(true);
  });

  it("takes the style out of the page", () => {
    const page = "<!doctype html><head><style>h1{color:red}</style></head><body><main class=record><h1>&lt;style&gt;</h1></main></body>";
    const { css, html } = splitStyle(page);
    expect(css).toBe("h1{color:red}");
    expect(html).toBe("<!doctype html><head></head><body><main class=record><h1>&lt;style&gt;</h1></main></body>");
    expect(splitStyle("<p>no style</p>")).toEqual({ css: "", html: "<p>no style</p>" });
  });
});
