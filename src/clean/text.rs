//! Null markers (SPEC §2): placeholder texts the scraper wrote instead of a value.

/// Values that mean "no value" in every text field, compared after trimming white space.
pub(crate) const NULL_MARKERS: [&str; 7] = [
    "",
    "No description available Story format",
    "No description available",
    "No Title Data Available",
    "User Info Error",
    "Image src error.",
    "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e",
];

/// Whether `text` is a null marker (white space around it does not matter).
pub(crate) fn is_null_marker(text: &str) -> bool {
    let trimmed = text.trim();
    NULL_MARKERS.contains(&trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_marker_is_a_marker_with_or_without_white_space() {
        for marker in NULL_MARKERS {
            for text in [
                marker.to_string(),
                format!("  {marker}"),
                format!("{marker}\t\n"),
                format!(" \u{a0}{marker} "),
            ] {
                assert!(is_null_marker(&text), "{text:?}");
            }
        }
    }

    #[test]
    fn other_texts_are_not_markers() {
        for text in [
            "No description",
            "no description available",
            "No Title Data Available!",
            "User Info",
            "Image src error",
            "No Tags Available",
            "N,o,T,a,g,s",
            "x",
            "art",
            "Local save in /data/art",
        ] {
            assert!(!is_null_marker(text), "{text:?}");
        }
    }
}
