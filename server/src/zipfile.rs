//! A zip archive of stored (uncompressed) files, built in memory, for the lab's export
//! (`format=zip`).
//!
//! Only the STORE method: the photos are JPEG, PNG or WebP, already compressed, and deflating
//! them again would cost time for nothing; the board is small next to them. Each file is
//! written once, straight into the archive's buffer, with its CRC-32 computed beforehand, so
//! no data descriptors are needed. The classic zip format holds at most 65,535 files and 4 GiB;
//! an archive that would pass either is refused rather than written wrong.

use crate::export::Civil;

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIRECTORY: u32 = 0x0605_4b50;
/// Version 2.0 of the format: what plain stored files need.
const VERSION: u16 = 20;
/// General purpose flag bit 11: the file names are UTF-8.
const UTF8_NAMES: u16 = 1 << 11;
const LOCAL_HEADER_BYTES: usize = 30;
const CENTRAL_HEADER_BYTES: usize = 46;
const END_BYTES: usize = 22;

/// The archive would not fit the classic zip format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the export is too large for one zip file (at most 65,535 files and 4 GiB)")]
pub struct TooLarge;

/// Writes an archive of stored files into memory.
pub struct ZipWriter {
    out: Vec<u8>,
    central: Vec<u8>,
    files: u16,
    /// MS-DOS time and date every file is stamped with.
    time: u16,
    date: u16,
}

impl ZipWriter {
    /// An empty archive whose files are stamped `now_ms` (milliseconds since the epoch, UTC).
    /// `capacity` is how many bytes the files will take, so that the buffer is allocated once.
    pub fn new(capacity: usize, now_ms: i64) -> Self {
        let (time, date) = dos_time(now_ms);
        Self {
            out: Vec::with_capacity(capacity),
            central: Vec::new(),
            files: 0,
            time,
            date,
        }
    }

    /// The bytes an archive of files with these names and sizes takes.
    pub fn size_of<'a>(files: impl IntoIterator<Item = (&'a str, usize)>) -> usize {
        files.into_iter().fold(END_BYTES, |total, (name, size)| {
            total
                .saturating_add(LOCAL_HEADER_BYTES + CENTRAL_HEADER_BYTES)
                .saturating_add(name.len().saturating_mul(2))
                .saturating_add(size)
        })
    }

    /// Adds a file `name` (a relative path with `/` between folders) holding `data`.
    pub fn add(&mut self, name: &str, data: &[u8]) -> Result<(), TooLarge> {
        let files = self.files.checked_add(1).ok_or(TooLarge)?;
        let offset = u32::try_from(self.out.len()).map_err(|_| TooLarge)?;
        let size = u32::try_from(data.len()).map_err(|_| TooLarge)?;
        let name_len = u16::try_from(name.len()).map_err(|_| TooLarge)?;
        let end = self
            .out
            .len()
            .checked_add(LOCAL_HEADER_BYTES + name.len() + data.len())
            .ok_or(TooLarge)?;
        u32::try_from(end).map_err(|_| TooLarge)?;
        let crc = crc32fast::hash(data);

        let out = &mut self.out;
        put32(out, LOCAL_HEADER);
        put16(out, VERSION);
        put16(out, UTF8_NAMES);
        put16(out, 0); // stored
        put16(out, self.time);
        put16(out, self.date);
        put32(out, crc);
        put32(out, size); // compressed size
        put32(out, size);
        put16(out, name_len);
        put16(out, 0); // no extra field
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);

        let c = &mut self.central;
        put32(c, CENTRAL_HEADER);
        put16(c, VERSION); // made by: MS-DOS attributes, version 2.0
        put16(c, VERSION);
        put16(c, UTF8_NAMES);
        put16(c, 0); // stored
        put16(c, self.time);
        put16(c, self.date);
        put32(c, crc);
        put32(c, size);
        put32(c, size);
        put16(c, name_len);
        put16(c, 0); // no extra field
        put16(c, 0); // no comment
        put16(c, 0); // disk 0
        put16(c, 0); // internal attributes
        put32(c, 0); // external attributes
        put32(c, offset);
        c.extend_from_slice(name.as_bytes());
        self.files = files;
        Ok(())
    }

    /// The archive: the files, then their central directory.
    pub fn finish(mut self) -> Result<Vec<u8>, TooLarge> {
        let offset = u32::try_from(self.out.len()).map_err(|_| TooLarge)?;
        let size = u32::try_from(self.central.len()).map_err(|_| TooLarge)?;
        let total = self
            .out
            .len()
            .checked_add(self.central.len() + END_BYTES)
            .ok_or(TooLarge)?;
        u32::try_from(total).map_err(|_| TooLarge)?;
        self.out.append(&mut self.central);
        let out = &mut self.out;
        put32(out, END_OF_CENTRAL_DIRECTORY);
        put16(out, 0); // this disk
        put16(out, 0); // the disk the directory starts on
        put16(out, self.files);
        put16(out, self.files);
        put32(out, size);
        put32(out, offset);
        put16(out, 0); // no comment
        Ok(self.out)
    }
}

fn put16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// MS-DOS time and date of a moment: years 1980 to 2107, even seconds; a moment outside those
/// years is stamped with the nearest one.
fn dos_time(ms: i64) -> (u16, u16) {
    let t = Civil::of(ms);
    let (year, month, day, hour, minute, second) = if t.year < 1980 {
        (1980, 1, 1, 0, 0, 0)
    } else if t.year > 2107 {
        (2107, 12, 31, 23, 59, 58)
    } else {
        (t.year, t.month, t.day, t.hour, t.minute, t.second)
    };
    let field = |n: i64| u16::try_from(n).expect("each field of a DOS time fits 16 bits");
    let time = (field(hour) << 11) | (field(minute) << 5) | field(second / 2);
    let date = (field(year - 1980) << 9) | (field(month) << 5) | field(day);
    (time, date)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(bytes: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([bytes[at], bytes[at + 1]])
    }

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
    }

    #[test]
    fn an_empty_archive_is_its_end_record() {
        let zip = ZipWriter::new(0, 0).finish().unwrap();
        assert_eq!(zip.len(), END_BYTES);
        assert_eq!(u32_at(&zip, 0), END_OF_CENTRAL_DIRECTORY);
        assert_eq!(ZipWriter::size_of([]), END_BYTES);
    }

    #[test]
    fn files_are_stored_with_their_crc_and_listed_in_the_directory() {
        // 2026-12-04T10:00:30Z
        let mut writer = ZipWriter::new(0, 1_796_378_430_000);
        writer.add("a.txt", b"123456789").unwrap();
        writer.add("photos/b.bin", &[0, 1, 2]).unwrap();
        let zip = writer.finish().unwrap();
        assert_eq!(
            zip.len(),
            ZipWriter::size_of([("a.txt", 9), ("photos/b.bin", 3)])
        );

        // The first local header and its data.
        assert_eq!(u32_at(&zip, 0), LOCAL_HEADER);
        assert_eq!(u16_at(&zip, 8), 0, "stored");
        assert_eq!(u16_at(&zip, 10), (10 << 11) | 15, "10:00:30");
        assert_eq!(u16_at(&zip, 12), (46 << 9) | (12 << 5) | 4, "2026-12-04");
        assert_eq!(u32_at(&zip, 14), 0xCBF4_3926, "the CRC-32 of 123456789");
        assert_eq!(u32_at(&zip, 18), 9);
        assert_eq!(u32_at(&zip, 22), 9);
        assert_eq!(u16_at(&zip, 26), 5);
        assert_eq!(&zip[30..35], b"a.txt");
        assert_eq!(&zip[35..44], b"123456789");
        let second = 44;
        assert_eq!(u32_at(&zip, second), LOCAL_HEADER);

        // The end record points at the directory, whose entries point at the local headers.
        let end = zip.len() - END_BYTES;
        assert_eq!(u32_at(&zip, end), END_OF_CENTRAL_DIRECTORY);
        assert_eq!(u16_at(&zip, end + 8), 2);
        assert_eq!(u16_at(&zip, end + 10), 2);
        let directory = u32_at(&zip, end + 16) as usize;
        assert_eq!(u32_at(&zip, end + 12) as usize, end - directory);
        assert_eq!(u32_at(&zip, directory), CENTRAL_HEADER);
        assert_eq!(u32_at(&zip, directory + 42), 0);
        let next = directory + CENTRAL_HEADER_BYTES + 5;
        assert_eq!(u32_at(&zip, next), CENTRAL_HEADER);
        assert_eq!(u32_at(&zip, next + 42) as usize, second);
        assert_eq!(u32_at(&zip, next + 16), crc32fast::hash(&[0, 1, 2]));
        assert_eq!(&zip[next + 46..next + 58], b"photos/b.bin");
    }

    #[test]
    fn dos_times_are_clamped_to_their_years() {
        assert_eq!(dos_time(0), (0, (1 << 5) | 1));
        assert_eq!(dos_time(i64::MAX / 4).1 >> 9, 127);
    }
}
