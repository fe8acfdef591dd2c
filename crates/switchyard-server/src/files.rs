//! The `file-parser` plugin: PDF files sent inline (`file.file_data` as a `data:` URL) become
//! their text, so that any model can read them, and the guardrails screen what they say.
//!
//! The text layer is read with `lopdf`, in the gateway: a scanned PDF without one (which needs
//! OCR) yields no text and is refused. Each page's decompressed content is bounded, so a small
//! compressed stream cannot inflate without limit. Files of other types, and files sent by id or
//! URL, are left for the model to read natively.

use base64::Engine as _;
use serde_json::Value;
use switchyard_core::chat::{ChatRequest, Content, ContentPart, Message};

/// The most decompressed content one page may have.
const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;

/// The prefix of an inline PDF.
const PDF_DATA: &str = "data:application/pdf;base64,";

/// Replaces every inline PDF of the request with its text; the error names the part at fault.
pub fn read_pdfs(request: &mut ChatRequest) -> Result<(), String> {
    for (i, message) in request.messages.iter_mut().enumerate() {
        let content = match message {
            Message::System { content, .. }
            | Message::Developer { content, .. }
            | Message::User { content, .. }
            | Message::Tool { content, .. } => Some(content),
            Message::Assistant { content, .. } => content.as_mut(),
        };
        let Some(Content::Parts(parts)) = content else {
            continue;
        };
        for (j, part) in parts.iter_mut().enumerate() {
            let ContentPart::File { file } = part else {
                continue;
            };
            let Some(data) = file
                .get("file_data")
                .and_then(Value::as_str)
                .and_then(|d| d.strip_prefix(PDF_DATA))
            else {
                continue;
            };
            let at = format!("messages[{i}].content[{j}].file");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|_| format!("{at}.file_data: not valid base64"))?;
            let text = pdf_text(&bytes).map_err(|why| format!("{at}: {why}"))?;
            let name = file
                .get("filename")
                .and_then(Value::as_str)
                .unwrap_or("document.pdf");
            *part = ContentPart::Text {
                text: format!("<file name={name:?}>\n{text}\n</file>"),
                cache_control: None,
            };
        }
    }
    Ok(())
}

/// The text of a PDF, page after page.
pub fn pdf_text(bytes: &[u8]) -> Result<String, String> {
    // A malformed file must not take the worker down with it.
    let read = std::panic::catch_unwind(|| {
        let document = lopdf::Document::load_mem(bytes)
            .map_err(|_| "the file-parser plugin could not read this PDF".to_owned())?;
        let pages: Vec<u32> = document.get_pages().keys().copied().collect();
        document
            .extract_text_with_limit(&pages, MAX_PAGE_BYTES)
            .map_err(|_| "the file-parser plugin could not read the text of this PDF".to_owned())
    })
    .map_err(|_| "the file-parser plugin could not read this PDF".to_owned())??;
    let text = read.trim();
    if text.is_empty() {
        return Err("this PDF has no text layer (a scan needs OCR, which this gateway does not do); send it with the file-parser plugin's pdf.engine \"native\" to a model that reads PDFs".to_owned());
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lopdf::content::{Content as PdfContent, Operation};
    use lopdf::{dictionary, Document, Object, Stream};

    /// A one-page PDF saying `text`, made as the lopdf examples make one.
    pub fn pdf(text: &str) -> Vec<u8> {
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let font_id = doc.add_object(dictionary! {
            "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Courier",
        });
        let resources_id = doc.add_object(dictionary! {
            "Font" => dictionary! { "F1" => font_id },
        });
        let content = PdfContent {
            operations: vec![
                Operation::new("BT", vec![]),
                Operation::new("Tf", vec!["F1".into(), 24.into()]),
                Operation::new("Td", vec![72.into(), 700.into()]),
                Operation::new("Tj", vec![Object::string_literal(text)]),
                Operation::new("ET", vec![]),
            ],
        };
        let encoded = content.encode().unwrap_or_default();
        let content_id = doc.add_object(Stream::new(dictionary! {}, encoded));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
        });
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1,
                "Resources" => resources_id, "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
            }),
        );
        let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
        doc.trailer.set("Root", catalog_id);
        let mut out = Vec::new();
        doc.save_to(&mut out).unwrap_or_default();
        out
    }

    #[test]
    fn reads_the_text_of_a_pdf() {
        let text = pdf_text(&pdf("Invoice 42 is due")).unwrap_or_else(|e| panic!("{e}"));
        assert!(text.contains("Invoice 42 is due"), "{text:?}");
    }

    #[test]
    fn refuses_what_is_not_a_pdf() {
        assert!(pdf_text(b"%PDF-1.5 garbage").is_err());
        assert!(pdf_text(b"").is_err());
    }
}
